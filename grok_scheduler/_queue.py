"""The priority queue of jobs waiting to be sent.

Order: a job's key is ``priority * aging_seconds + enqueued_at``, so a job that has waited
``aging_seconds`` counts as one level more urgent. The key is fixed at submit time, which keeps
this a plain heap (no re-sorting) while guaranteeing that LOW work is never starved forever; a
sequence number breaks ties so equal keys stay FIFO. With aging off the key is the priority alone.

Jobs waiting out a backoff sit in a second heap ordered by the time they become eligible and
move to the ready heap when that time comes. Cancelled jobs are dropped lazily when they surface.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._job import Job

__all__ = ["JobQueue"]


class JobQueue:
    """Ready jobs by urgency, delayed jobs by eligibility time."""

    __slots__ = ("_aging_seconds", "_delayed", "_live", "_ready", "_sequence")

    def __init__(self, *, aging_seconds: float | None) -> None:
        self._aging_seconds = aging_seconds
        self._ready: list[tuple[float, int, Job]] = []
        self._delayed: list[tuple[float, int, Job]] = []
        self._sequence = itertools.count()
        self._live = 0

    def key_for(self, priority: int, enqueued_at: float) -> float:
        """The heap key of a job submitted at ``enqueued_at``."""
        if self._aging_seconds is None:
            return float(priority)
        return priority * self._aging_seconds + enqueued_at

    def push(self, job: Job, now: float) -> bool:
        """Add ``job``; True when it is now the most urgent eligible job."""
        self._live += 1
        job.queued = True
        if job.eligible_at > now:
            heapq.heappush(self._delayed, (job.eligible_at, next(self._sequence), job))
            return False
        heapq.heappush(self._ready, (job.key, next(self._sequence), job))
        return self._ready[0][2] is job

    def peek(self, now: float) -> Job | None:
        """The most urgent eligible job, or None."""
        if self._delayed:
            self._promote_due(now)
        ready = self._ready
        while ready:
            job = ready[0][2]
            if not job.cancelled:
                return job
            heapq.heappop(ready)
        return None

    def _promote_due(self, now: float) -> None:
        # The delayed heap is keyed by eligibility time, not by urgency.
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            _, sequence, job = heapq.heappop(delayed)
            if not job.cancelled:
                heapq.heappush(self._ready, (job.key, sequence, job))

    def pop(self, now: float) -> Job:
        """Remove and return the job :meth:`peek` returned."""
        job = self.peek(now)
        if job is None:
            raise IndexError("no eligible job")
        heapq.heappop(self._ready)
        self._live -= 1
        job.queued = False
        return job

    def discard(self, job: Job) -> None:
        """Forget a cancelled job (it is skipped when it surfaces)."""
        if job.queued:
            job.queued = False
            self._live -= 1

    def next_eligible_at(self) -> float | None:
        """When the earliest delayed job becomes eligible, or None."""
        delayed = self._delayed
        while delayed and delayed[0][2].cancelled:
            heapq.heappop(delayed)
        return delayed[0][0] if delayed else None

    def drain(self) -> Iterator[Job]:
        """Remove and yield every live job (for shutdown and fatal stops)."""
        for heap in (self._ready, self._delayed):
            while heap:
                job = heapq.heappop(heap)[2]
                if not job.cancelled:
                    job.queued = False
                    yield job
        self._live = 0

    def jobs(self) -> Iterator[Job]:
        """Every live job, in no particular order (for statistics)."""
        for heap in (self._ready, self._delayed):
            for _, _, job in heap:
                if not job.cancelled:
                    yield job

    def __len__(self) -> int:
        return self._live

    def __repr__(self) -> str:
        return f"JobQueue(live={self._live}, aging_seconds={self._aging_seconds})"
