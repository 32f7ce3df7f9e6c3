"""The priority queue of jobs waiting to be sent.

Order: a job's key is ``priority * aging_seconds + enqueued_at``, so a job that has waited
``aging_seconds`` counts as one level more urgent. The key is fixed at submit time, which keeps
this a plain heap (no re-sorting) while guaranteeing that LOW work is never starved forever; a
sequence number breaks ties so equal keys stay FIFO. With aging off the key is the priority alone.

A retried job keeps both its key and its sequence number: it goes back to the place it was
first queued in, ahead of every job queued after it. Given a new number it would go behind the
whole backlog of its priority (a bulk run submits everything at one instant, so every job has
the same key), and a job failing late would wait for all the rest: the run's makespan would be
its whole retry chain added after the last job. Its backoff still holds it in the delayed heap.

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
    """Ready jobs by urgency, delayed jobs by eligibility time.

    Urgent jobs (priority <= ``urgent_at_most``) wait in their own ready heap, so the scheduler can
    find the most urgent of them at once when the head of the queue is an aged, less urgent job
    that must leave the reserved workers free.
    """

    __slots__ = (
        "_aging_seconds",
        "_delayed",
        "_live",
        "_rest",
        "_sequence",
        "_urgent",
        "_urgent_at_most",
    )

    def __init__(self, *, aging_seconds: float | None, urgent_at_most: int = 1) -> None:
        self._aging_seconds = aging_seconds
        self._urgent_at_most = urgent_at_most
        self._urgent: list[tuple[float, int, Job]] = []
        self._rest: list[tuple[float, int, Job]] = []
        self._delayed: list[tuple[float, int, Job]] = []
        self._sequence = itertools.count()
        self._live = 0

    def key_for(self, priority: int, enqueued_at: float) -> float:
        """The heap key of a job submitted at ``enqueued_at``."""
        if self._aging_seconds is None:
            return float(priority)
        return priority * self._aging_seconds + enqueued_at

    def _ready_heap(self, job: Job) -> list[tuple[float, int, Job]]:
        return self._urgent if job.priority <= self._urgent_at_most else self._rest

    def push(self, job: Job, now: float) -> bool:
        """Add ``job``; True when it is now the most urgent eligible job."""
        self._live += 1
        job.queued = True
        if job.queue_order is None:
            job.queue_order = next(self._sequence)
        if job.eligible_at > now:
            heapq.heappush(self._delayed, (job.eligible_at, job.queue_order, job))
            return False
        heapq.heappush(self._ready_heap(job), (job.key, job.queue_order, job))
        return self.peek(now) is job

    @staticmethod
    def _head(heap: list[tuple[float, int, Job]]) -> tuple[float, int, Job] | None:
        while heap:
            if not heap[0][2].cancelled:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _best(self, now: float, urgent_only: bool) -> list[tuple[float, int, Job]] | None:
        if self._delayed:
            self._promote_due(now)
        urgent = self._head(self._urgent)
        if urgent_only:
            return self._urgent if urgent is not None else None
        rest = self._head(self._rest)
        if rest is None:
            return self._urgent if urgent is not None else None
        if urgent is None or rest[:2] < urgent[:2]:
            return self._rest
        return self._urgent

    def peek(self, now: float, *, urgent_only: bool = False) -> Job | None:
        """The most urgent eligible job (only among urgent ones if asked), or None."""
        heap = self._best(now, urgent_only)
        return heap[0][2] if heap else None

    def _promote_due(self, now: float) -> None:
        # The delayed heap is keyed by eligibility time, not by urgency.
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            _, order, job = heapq.heappop(delayed)
            if not job.cancelled:
                heapq.heappush(self._ready_heap(job), (job.key, order, job))

    def pop(self, now: float, *, urgent_only: bool = False) -> Job:
        """Remove and return the job :meth:`peek` returned (with the same ``urgent_only``)."""
        heap = self._best(now, urgent_only)
        if not heap:
            raise IndexError("no eligible job")
        job = heapq.heappop(heap)[2]
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
        for heap in (self._urgent, self._rest, self._delayed):
            while heap:
                job = heapq.heappop(heap)[2]
                if not job.cancelled:
                    job.queued = False
                    yield job
        self._live = 0

    def jobs(self) -> Iterator[Job]:
        """Every live job, in no particular order (for statistics)."""
        for heap in (self._urgent, self._rest, self._delayed):
            for _, _, job in heap:
                if not job.cancelled:
                    yield job

    def __len__(self) -> int:
        return self._live

    def __repr__(self) -> str:
        return f"JobQueue(live={self._live}, aging_seconds={self._aging_seconds})"
