"""``Scheduler.submit_batch``: a library's bulk work through the Batch API, or both roads.

:class:`BatchRun` takes the same items as ``Scheduler.map`` and yields a :class:`RoadOutcome`
per item as it finishes. ``via="batch"`` sends everything through xAI's Batch API;
``via="auto"`` with ``deadline`` (seconds from now) runs online at the learned limit and sends
what cannot finish in time through a batch (see :mod:`._roads`); ``batch_delay`` is how long
the batch road is expected to take until the run sees it answer (see :mod:`._plan`), and
:attr:`BatchRun.at_risk` says when the plan no longer expects to meet the deadline. Leaving
the ``async with`` block early, or :meth:`BatchRun.cancel`, cancels the remote batches: a
library caller that stops wants no further bill. A ``state_file`` makes the batch road
resumable across processes (its ids must then be stable: give each item ``metadata`` with a
``custom_id``, or the item's position is its id).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .._clock import Clock
from .._core._map import PromptItem, Rejected, split_item
from .._models import Priority
from .._transports._rest import AiohttpRest, Rest
from ._answer import batch_body
from ._client import BatchClient
from ._journal import Journal
from ._plan import BATCH_DELAY_PRIOR
from ._road import BatchRoad
from ._roads import Line, OnlineRoad, RoadCosts, RoadOutcome, Roads

__all__ = ["BatchRun"]

_DONE = object()


def _custom_id(index: int, metadata: Any) -> str:
    if isinstance(metadata, Mapping) and isinstance(metadata.get("custom_id"), str):
        return str(metadata["custom_id"])
    return str(index)


class BatchRun:
    """The outcomes of one ``submit_batch``: ``async with`` it and iterate."""

    __slots__ = ("_bad", "_closed", "_journal", "_lines", "_queue", "_rest", "_roads", "_task")

    def __init__(
        self,
        scheduler: OnlineRoad,
        prompts: Iterable[PromptItem],
        *,
        base_url: str,
        clock: Clock,
        via: str = "batch",
        deadline: float | None = None,
        state_file: str | os.PathLike[str] | None = None,
        api_key: str | None = None,
        rest: Rest | None = None,
        poll_min: float = 5.0,
        poll_max: float = 60.0,
        batch_delay: float | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        if rest is None:
            key = api_key if api_key is not None else os.environ.get("XAI_API_KEY")
            if not key:
                raise ValueError("no API key for the Batch API: pass api_key= or set XAI_API_KEY")
            rest = AiohttpRest(base_url=base_url, api_key=key)
        self._rest = rest
        self._journal = Journal(state_file)
        road = BatchRoad(
            BatchClient(rest, clock=clock),
            self._journal,
            clock=clock,
            poll_min=poll_min,
            poll_max=poll_max,
        )
        at = clock.now() + deadline if deadline is not None else None
        self._roads = Roads(
            scheduler,
            road,
            clock=clock,
            via=via,
            deadline=at,
            batch_delay=BATCH_DELAY_PRIOR if batch_delay is None else batch_delay,
        )
        self._bad: list[RoadOutcome] = []
        lines = []
        for index, item in enumerate(prompts):
            prepared = split_item(item, defaults or {})
            if isinstance(prepared, Rejected):
                custom_id = _custom_id(index, prepared.metadata)
                self._bad.append(
                    RoadOutcome(custom_id, "online", None, prepared.error, prepared.metadata)
                )
                continue
            prompt, options = prepared
            metadata = options.pop("metadata", None)
            priority = int(options.pop("priority", Priority.NORMAL))
            body = batch_body(prompt, options, scheduler.model)
            lines.append(
                Line(_custom_id(index, metadata), priority, prompt, options, body, metadata)
            )
        self._lines = lines
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"BatchRun(roads={self._roads!r})"

    @property
    def at_risk(self) -> str | None:
        """Why the deadline is at risk now (None: the plan expects to meet it)."""
        return self._roads.at_risk

    @property
    def late(self) -> dict[str, int]:
        """Lines answered after the deadline so far, per road."""
        return dict(self._roads.late)

    @property
    def costs(self) -> RoadCosts:
        """US dollars per road so far, and what the same work would have cost online."""
        return self._roads.costs

    async def _run(self) -> None:
        try:
            await self._roads.road.resume()
            self._roads.assign(self._lines)
            await self._roads.run(self._queue.put_nowait)
        finally:
            self._queue.put_nowait(_DONE)

    def __aiter__(self) -> BatchRun:
        return self

    async def __anext__(self) -> RoadOutcome:
        if self._bad:
            return self._bad.pop(0)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        item = await self._queue.get()
        if item is _DONE:
            self._queue.put_nowait(_DONE)
            if self._task.done() and self._task.exception() is not None:
                raise self._task.exception()  # type: ignore[misc]
            raise StopAsyncIteration
        outcome: RoadOutcome = item
        return outcome

    async def __aenter__(self) -> BatchRun:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def cancel(self) -> None:
        """Stop: cancel the remote batches and the online jobs not yet finished."""
        self._roads.cancel_online()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._roads.road.cancel()

    async def aclose(self) -> None:
        """Cancel what has not finished (remote batches included), then release the session."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._task is None or not self._task.done():
                await self.cancel()
        finally:
            self._journal.close()
            await self._rest.aclose()
