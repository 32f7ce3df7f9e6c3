"""The simulated Batch API's book: batches, their requests, results and refusals (no HTTP).

xAI's Batch API (docs.x.ai, "Batch API") as the simulator keeps it. Every method takes ``now``
so a test can step time: a request added at ``t`` is answered at ``t + processing_delay``;
results are readable from then on, 100 a page behind a ``pagination_token``.

Refused as xAI refuses (documented limits): a second batch creation within 1 s of the last
(429), an add-requests payload over 25 MB (413), more than 100 add-requests calls in any 30 s
(429). ``failure_rate`` fails that share of requests (chosen by a seeded draw, so a test can
rely on it); an invalid request body (unknown model, no messages) fails its request only.

A failed request's result is ``{"error": "..."}``, as xAI's own TypeScript SDK types it
(``xai-org/xai-sdk-ts``, ``BatchResult``). Whether cancelled requests appear in results is the
simulator's guess (they do not), mirrored by the client's one guessing module
``grok_scheduler/_wire/_batch.py``.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._protocol import INVALID_ARGUMENT, NOT_FOUND, ModelCall, chat_body
from ._world import Reply, World

__all__ = ["BatchBook", "BatchConfig", "BatchStats"]

MAX_ADD_PAYLOAD_BYTES = 25 * 1024 * 1024
"""xAI: 'Each request to add batch requests has a maximum payload size of 25MB'."""
CREATION_INTERVAL = 1.0
"""xAI: 'Maximum batch creation rate: 1 batch creation per second per team'."""
ADD_CALLS_PER_WINDOW = 100
ADD_WINDOW_SECONDS = 30.0
"""xAI: 'up to 100 add-batch-requests API calls every 30 seconds (rolling)'."""
PAGE_SIZE = 100


@dataclass(slots=True)
class BatchConfig:
    """How the simulated Batch API behaves."""

    processing_delay: float = 0.0
    """Seconds from adding a request to its result being readable."""
    failure_rate: float = 0.0
    """Share of requests that fail (a seeded draw per request)."""
    price_factor: float = 0.5
    """Batch price relative to online (the docs: 50% off)."""
    seed: int = 0
    page_size: int = PAGE_SIZE
    add_latency: float = 0.0
    """Seconds each add-requests call takes to answer (real time; tests use it to land a kill
    in the middle of a submission)."""


@dataclass(slots=True)
class BatchStats:
    """What a client did to the Batch API (for tests and benchmarks)."""

    created: int = 0
    add_calls: int = 0
    requests_added: int = 0
    duplicates: int = 0
    """Requests added under a ``batch_request_id`` the batch already held."""
    refused: dict[str, int] = field(default_factory=dict)
    cancelled_batches: int = 0
    result_pages: int = 0


@dataclass(slots=True)
class _Request:
    custom_id: str
    added_at: float
    call: ModelCall | None
    error: str | None
    cancelled: bool = False


@dataclass(slots=True)
class _Batch:
    batch_id: str
    name: str
    created_at: float
    requests: list[_Request] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    cancelled_at: float | None = None


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(status: int, code: str | None, message: str) -> Reply:
    body = {"code": code, "error": message} if code is not None else {"error": message}
    return Reply(status, _json(body))


class BatchBook:
    """All batches and uploaded files of the simulated team."""

    __slots__ = ("_add_calls", "_batches", "_files", "_last_creation", "_rng", "config", "stats")

    def __init__(self, config: BatchConfig | None = None) -> None:
        self.config = config if config is not None else BatchConfig()
        self.stats = BatchStats()
        self._batches: dict[str, _Batch] = {}
        self._files: dict[str, list[tuple[str, object]]] = {}
        self._last_creation: float | None = None
        self._add_calls: deque[float] = deque()
        self._rng = random.Random(self.config.seed)

    def __repr__(self) -> str:
        return f"BatchBook(config={self.config!r}, batches={len(self._batches)})"

    def _refuse(self, why: str, reply: Reply) -> Reply:
        self.stats.refused[why] = self.stats.refused.get(why, 0) + 1
        return reply

    # -- files (the OpenAI-compatible way in) ---------------------------------------------
    def upload(self, content: bytes) -> Reply:
        """``POST /v1/files``: a JSONL of ``{custom_id, method, url, body}`` lines."""
        if len(content) > MAX_ADD_PAYLOAD_BYTES:
            return self._refuse("payload", _error(413, INVALID_ARGUMENT, "File too large"))
        items: list[tuple[str, object]] = []
        for number, raw in enumerate(content.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                items.append((str(line["custom_id"]), line["body"]))
            except (ValueError, KeyError, TypeError):
                return _error(400, INVALID_ARGUMENT, f"line {number} is not a batch request")
        file_id = f"file-{uuid.uuid4()}"
        self._files[file_id] = items
        return Reply(200, _json({"id": file_id, "object": "file", "bytes": len(content)}))

    # -- batches ----------------------------------------------------------------------------
    def create(self, payload: object, world: World, now: float) -> Reply:
        """``POST /v1/batches``: ``{"name"}`` or ``{"input_file_id", ...}``."""
        last = self._last_creation
        if last is not None and now - last < CREATION_INTERVAL:
            message = "Too many batch creations: at most 1 per second per team"
            return self._refuse("creation_rate", _error(429, None, message))
        if not isinstance(payload, dict):
            return _error(400, INVALID_ARGUMENT, "body must be a JSON object")
        file_id = payload.get("input_file_id")
        if file_id is not None and file_id not in self._files:
            return _error(404, NOT_FOUND, f"No such file: {file_id}")
        self._last_creation = now
        self.stats.created += 1
        batch_id = f"batch_{uuid.uuid4()}"
        batch = _Batch(batch_id, str(payload.get("name") or batch_id), now)
        self._batches[batch_id] = batch
        if file_id is not None:
            for custom_id, body in self._files[file_id]:
                self._add_one(batch, custom_id, body, world, now)
        return Reply(200, _json(self._describe(batch, now)))

    def add(self, batch_id: str, size: int, payload: object, world: World, now: float) -> Reply:
        """``POST /v1/batches/{id}/requests``: ``{"batch_requests": [...]}``."""
        if size > MAX_ADD_PAYLOAD_BYTES:
            message = f"Payload of {size} bytes exceeds the 25MB limit"
            return self._refuse("payload", _error(413, INVALID_ARGUMENT, message))
        calls = self._add_calls
        while calls and now - calls[0] >= ADD_WINDOW_SECONDS:
            calls.popleft()
        if len(calls) >= ADD_CALLS_PER_WINDOW:
            message = "Too many add-batch-requests calls: at most 100 per 30 seconds per team"
            return self._refuse("add_rate", _error(429, None, message))
        batch = self._batches.get(batch_id)
        if batch is None:
            return _error(404, NOT_FOUND, f"No such batch: {batch_id}")
        items = payload.get("batch_requests") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            return _error(400, INVALID_ARGUMENT, "batch_requests: field required")
        calls.append(now)
        self.stats.add_calls += 1
        for item in items:
            if not isinstance(item, dict):
                return _error(400, INVALID_ARGUMENT, "a batch request must be an object")
            request = item.get("batch_request")
            body = request.get("chat_get_completion") if isinstance(request, dict) else None
            custom_id = str(item.get("batch_request_id") or uuid.uuid4())
            self._add_one(batch, custom_id, body, world, now)
        return Reply(200, b"{}")

    def _add_one(
        self, batch: _Batch, custom_id: str, body: object, world: World, now: float
    ) -> None:
        if custom_id in batch.ids:
            self.stats.duplicates += 1
        batch.ids.add(custom_id)
        self.stats.requests_added += 1
        parsed = world.parse("chat", body)
        if isinstance(parsed, Reply):
            call, error = None, json.loads(parsed.body).get("error", "invalid request")
        elif self._rng.random() < self.config.failure_rate:
            call, error = None, "Internal error while processing the batch request"
        else:
            call, error = parsed, None
        batch.requests.append(_Request(custom_id, now, call, error))

    def status(self, batch_id: str, now: float) -> Reply:
        """``GET /v1/batches/{id}``: the batch with its counts."""
        batch = self._batches.get(batch_id)
        if batch is None:
            return _error(404, NOT_FOUND, f"No such batch: {batch_id}")
        return Reply(200, _json(self._describe(batch, now)))

    def cancel(self, batch_id: str, now: float) -> Reply:
        """``POST /v1/batches/{id}:cancel``: requests not yet answered are cancelled."""
        batch = self._batches.get(batch_id)
        if batch is None:
            return _error(404, NOT_FOUND, f"No such batch: {batch_id}")
        if batch.cancelled_at is None:
            batch.cancelled_at = now
            self.stats.cancelled_batches += 1
            for request in batch.requests:
                if not self._done(request, now):
                    request.cancelled = True
        return Reply(200, _json(self._describe(batch, now)))

    def results(self, batch_id: str, token: str | None, limit: int | None, now: float) -> Reply:
        """``GET /v1/batches/{id}/results``: answered requests, a page at a time."""
        batch = self._batches.get(batch_id)
        if batch is None:
            return _error(404, NOT_FOUND, f"No such batch: {batch_id}")
        try:
            start = int(token) if token else 0
        except ValueError:
            return _error(400, INVALID_ARGUMENT, "invalid pagination_token")
        size = min(limit or self.config.page_size, self.config.page_size)
        self.stats.result_pages += 1
        # Requests finish in the order they were added (one delay for all), so the answered
        # ones are a prefix apart from cancelled ones: an index is a stable token.
        page: list[dict[str, Any]] = []
        index = start
        for request in itertools.islice(batch.requests, start, None):
            if not self._done(request, now) and not request.cancelled:
                break
            index += 1
            if not request.cancelled:
                page.append(self._result(batch, request))
                if len(page) == size:
                    break
        more = index < len(batch.requests) and page
        body = {"results": page, "pagination_token": str(index) if more else None}
        return Reply(200, _json(body))

    # -- views ------------------------------------------------------------------------------
    def _done(self, request: _Request, now: float) -> bool:
        return now >= request.added_at + self.config.processing_delay

    def _describe(self, batch: _Batch, now: float) -> dict[str, Any]:
        success = error = cancelled = pending = 0
        for request in batch.requests:
            if request.cancelled:
                cancelled += 1
            elif not self._done(request, now):
                pending += 1
            elif request.call is None:
                error += 1
            else:
                success += 1
        return {
            "batch_id": batch.batch_id,
            "name": batch.name,
            "create_time": batch.created_at,
            "cancel_time": batch.cancelled_at,
            "state": {
                "num_requests": len(batch.requests),
                "num_pending": pending,
                "num_success": success,
                "num_error": error,
                "num_cancelled": cancelled,
            },
        }

    def _result(self, batch: _Batch, request: _Request) -> dict[str, Any]:
        if request.call is None:
            # xAI's own SDK types a failed request's result as ``{"error": string}``.
            result: dict[str, Any] = {"error": request.error}
        else:
            completion = chat_body(request.call, f"{batch.batch_id}-{request.custom_id}", 0)
            usage = completion["usage"]
            ticks = usage.get("cost_in_usd_ticks")
            if isinstance(ticks, int):
                usage["cost_in_usd_ticks"] = round(ticks * self.config.price_factor)
            result = {"response": {"chat_get_completion": completion}}
        return {"batch_request_id": request.custom_id, "batch_result": result}
