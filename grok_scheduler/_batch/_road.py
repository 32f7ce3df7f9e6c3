"""The batch road: lines into batches (chunked, journaled), results out as they are readable.

:meth:`BatchRoad.resume` settles what a killed run left unconfirmed; :meth:`submit` adds
lines in chunks under 25 MB, opening a new batch every ``batch_size`` lines (xAI throttles
batches over 100,000 requests); :meth:`results` polls every batch with backoff (from
``poll_min`` doubling to ``poll_max``, back to ``poll_min`` whenever results arrived) and
yields each result once per run. :meth:`cancel` cancels the remote batches.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._clock import Clock, LoopClock
from .._wire import _batch as wire
from ._client import BatchClient
from ._journal import Journal

__all__ = ["BatchProgress", "BatchRoad"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """The road's counts, summed over its batches (for the progress display)."""

    submitted: int
    pending: int
    succeeded: int
    failed: int
    cancelled: int


class BatchRoad:
    """Submits to and reads back from the Batch API for one run."""

    __slots__ = (
        "_client",
        "_clock",
        "_closed",
        "_journal",
        "_name",
        "_seen",
        "_statuses",
        "_tokens",
        "batch_size",
        "chunk_bytes",
        "poll_max",
        "poll_min",
    )

    def __init__(
        self,
        client: BatchClient,
        journal: Journal,
        *,
        clock: Clock | None = None,
        name: str = "grok-scheduler",
        batch_size: int = 100_000,
        chunk_bytes: int = wire.MAX_ADD_PAYLOAD_BYTES - 64 * 1024,
        poll_min: float = 5.0,
        poll_max: float = 60.0,
    ) -> None:
        self._client = client
        self._journal = journal
        self._clock = clock if clock is not None else LoopClock()
        self._name = name
        self.batch_size = batch_size
        self.chunk_bytes = chunk_bytes
        self.poll_min = poll_min
        self.poll_max = poll_max
        self._seen: set[str] = set()
        self._tokens: dict[str, str | None] = {}
        self._statuses: dict[str, wire.BatchStatus] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"BatchRoad(journal={self._journal!r}, batch_size={self.batch_size})"

    @property
    def journal(self) -> Journal:
        return self._journal

    async def resume(self) -> None:
        """Settle chunks a killed run sent without confirmation, by ``num_requests``."""
        for pending in self._journal.pending:
            status = await self._client.status(pending.batch_id)
            if status.requests >= pending.expect:
                self._journal.added(pending.batch_id, pending.expect)
            else:
                self._journal.lost(pending.batch_id, pending.expect)

    async def submit(self, lines: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Send ``(custom_id, chat body)`` pairs not sent before; returns how many were sent."""
        journal = self._journal
        fresh = (
            (custom_id, wire.batch_request(custom_id, body))
            for custom_id, body in lines
            if not journal.submitted(custom_id)
        )
        sent = 0
        for ids, body in wire.add_requests_chunks(fresh, max_bytes=self.chunk_bytes):
            batch_id = await self._batch_with_room(len(ids))
            await self._add(batch_id, ids, body)
            sent += len(ids)
        return sent

    async def _batch_with_room(self, size: int) -> str:
        batches = self._journal.batches
        if batches and self._journal.count(batches[-1]) + size <= self.batch_size:
            return batches[-1]
        batch_id = await self._client.create(f"{self._name}-{uuid.uuid4().hex[:8]}")
        self._journal.created(batch_id)
        return batch_id

    async def _add(self, batch_id: str, ids: list[str], body: bytes) -> None:
        journal = self._journal
        expect = journal.adding(batch_id, ids)
        while not await self._client.add(batch_id, body):
            status = await self._client.status(batch_id)
            if status.requests >= expect:
                break  # it landed after all
        journal.added(batch_id, expect)

    def progress(self) -> BatchProgress:
        statuses = self._statuses.values()
        return BatchProgress(
            submitted=self._journal.submitted_count,
            pending=sum(s.pending for s in statuses),
            succeeded=sum(s.succeeded for s in statuses),
            failed=sum(s.failed for s in statuses),
            cancelled=sum(s.cancelled for s in statuses),
        )

    async def results(self, *, until_finished: bool = True) -> AsyncIterator[wire.BatchItem]:
        """Each result of every journaled batch once, as it becomes readable."""
        wait = self.poll_min
        while not self._closed:
            fresh = 0
            unfinished = 0
            for batch_id in self._journal.batches:
                status = await self._client.status(batch_id)
                self._statuses[batch_id] = status
                async for item in self._read(batch_id):
                    fresh += 1
                    yield item
                if not status.finished:
                    unfinished += 1
            if unfinished == 0 and until_finished:
                # One last read: results written between the status and the read above.
                return
            wait = self.poll_min if fresh else min(self.poll_max, wait * 2)
            await self._clock.sleep(wait)

    async def read_once(self) -> tuple[list[wire.BatchItem], bool]:
        """One pass over every batch: the results not seen before, and whether all finished.

        Each status is read before that batch's results, so a batch seen finished has all its
        results in this pass.
        """
        fresh: list[wire.BatchItem] = []
        unfinished = 0
        for batch_id in self._journal.batches:
            status = await self._client.status(batch_id)
            self._statuses[batch_id] = status
            async for item in self._read(batch_id):
                fresh.append(item)
            if not status.finished:
                unfinished += 1
        return fresh, unfinished == 0

    async def _read(self, batch_id: str) -> AsyncIterator[wire.BatchItem]:
        token = self._tokens.get(batch_id)
        while True:
            page = await self._client.results(batch_id, token)
            for item in page.items:
                if item.custom_id not in self._seen:
                    self._seen.add(item.custom_id)
                    yield item
            if page.next_token is None:
                # Restart here next time: this page may still grow (re-read items are skipped).
                self._tokens[batch_id] = token
                return
            token = page.next_token

    async def cancel(self) -> None:
        """Cancel every batch of this run on the server."""
        self._closed = True
        for batch_id in self._journal.batches:
            await self._client.cancel(batch_id)
