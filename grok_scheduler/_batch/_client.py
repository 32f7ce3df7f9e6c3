"""The Batch API client: each call paced within xAI's team limits and retried when it may be.

Pacing: batch creations at least 1 s apart; at most 100 add-requests calls in any 30 s. A
refused or failed call (429, 5xx, a connection error) is retried with jittered exponential
backoff, as the online road retries. An add-requests call is never retried blind: when its
fate is unknown (a connection error), :meth:`BatchClient.add` reports that, and the caller
asks the batch's ``num_requests`` whether it landed (sending it twice would run lines twice).
"""

from __future__ import annotations

import json
import random
from collections import deque

from .._clock import Clock, LoopClock
from .._errors import APIConnectionError
from .._transports._base import TransportResponse
from .._transports._rest import Rest
from .._wire import _batch as wire
from .._wire._classify import classify_response

__all__ = ["AddOutcome", "BatchClient"]

AddOutcome = bool
"""``True``: the server took the requests; ``False``: unknown (ask ``num_requests``)."""


class BatchClient:
    """create / add / status / results / cancel, paced and retried."""

    __slots__ = ("_adds", "_clock", "_last_create", "_max_attempts", "_rest", "_rng")

    def __init__(
        self,
        rest: Rest,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        max_attempts: int = 8,
    ) -> None:
        self._rest = rest
        self._clock = clock if clock is not None else LoopClock()
        self._rng = rng if rng is not None else random.Random()
        self._max_attempts = max_attempts
        self._last_create: float | None = None
        self._adds: deque[float] = deque()

    def __repr__(self) -> str:
        return f"BatchClient(rest={self._rest!r}, max_attempts={self._max_attempts})"

    async def _backoff(self, failures: int, retry_after: float | None) -> None:
        wait = retry_after if retry_after is not None else min(60.0, 0.5 * 2 ** (failures - 1))
        await self._clock.sleep(wait * (0.5 + self._rng.random() / 2))

    async def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """One call, retried on 429 / 5xx / connection trouble; the body of the 2xx answer."""
        failures = 0
        while True:
            try:
                response = await self._rest.request(method, path, body)
            except APIConnectionError:
                failures += 1
                if failures >= self._max_attempts:
                    raise
                await self._backoff(failures, None)
                continue
            if 200 <= response.status < 300:
                return response.body
            failures += 1
            verdict = classify_response(
                response.status, response.headers, response.body, request_id=response.request_id
            )
            if not verdict.retryable or failures >= self._max_attempts:
                raise verdict.error
            await self._backoff(failures, verdict.retry_after)

    async def create(self, name: str) -> str:
        """A new batch's id (waits out the 1-per-second creation limit)."""
        if self._last_create is not None:
            wait = self._last_create + wire.CREATION_INTERVAL - self._clock.now()
            if wait > 0:
                await self._clock.sleep(wait)
        raw = await self._call("POST", wire.CREATE_PATH, _json({"name": name}))
        self._last_create = self._clock.now()
        return wire.batch_id_of(raw)

    async def add(self, batch_id: str, body: bytes) -> AddOutcome:
        """Add one chunk; ``False`` when its fate is unknown (see the module doc)."""
        adds = self._adds
        while True:
            now = self._clock.now()
            while adds and now - adds[0] >= wire.ADD_WINDOW_SECONDS:
                adds.popleft()
            if len(adds) < wire.ADD_CALLS_PER_WINDOW:
                break
            await self._clock.sleep(adds[0] + wire.ADD_WINDOW_SECONDS - now)
        adds.append(self._clock.now())
        try:
            response: TransportResponse = await self._rest.request(
                "POST", wire.requests_path(batch_id), body
            )
        except APIConnectionError:
            return False
        if 200 <= response.status < 300:
            return True
        verdict = classify_response(
            response.status, response.headers, response.body, request_id=response.request_id
        )
        if verdict.retryable:
            # Refused (429) or failed before it was taken: the caller checks and resends.
            await self._backoff(1, verdict.retry_after)
            return False
        raise verdict.error

    async def status(self, batch_id: str) -> wire.BatchStatus:
        return wire.read_status(await self._call("GET", wire.status_path(batch_id)))

    async def results(self, batch_id: str, token: str | None) -> wire.ResultsPage:
        return wire.read_results(await self._call("GET", wire.results_path(batch_id, token)))

    async def cancel(self, batch_id: str) -> None:
        await self._call("POST", wire.cancel_path(batch_id))

    async def aclose(self) -> None:
        await self._rest.aclose()


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()
