"""Two roads for one set of lines: online through the scheduler, and xAI's Batch API.

:class:`Roads` puts each line on exactly one road and reports every line's outcome once.
``via="batch"`` sends everything to the batch road. ``via="auto"`` with a deadline runs lines
online at the rate the scheduler learns, and every ``replan_every`` seconds asks
:func:`~._plan.overflow` how many of the lines still waiting cannot start in time; those leave
the online queue from its far end and go to the batch road. Only lines not yet handed to the
scheduler move, so an online retry never races a batch copy, and a line sent to the batch
road stays there. CRITICAL and HIGH lines are never moved; LOW lines go to the batch road from
the start (see :mod:`._plan`).

Lines the journal already holds (a resumed run) stay on the batch road and are only polled.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._clock import Clock
from .._core._map import Outcome, OutcomeStream, Prepared, Submitter
from .._models import Result
from .._observe._stats import SchedulerStatistics
from .._wire._batch import PRICE_FACTOR
from ._answer import batch_result, unanswered
from ._plan import Estimate, may_overflow, overflow, rate_of, road_for
from ._road import BatchRoad

__all__ = ["Line", "RoadCosts", "RoadOutcome", "Roads"]

VIAS = ("batch", "auto")


@dataclass(frozen=True, slots=True)
class Line:
    """One unit of work: how to send it online and how to send it through a batch."""

    custom_id: str
    priority: int
    prompt: Any
    options: Mapping[str, Any]
    """Keyword arguments of ``submit`` (without ``metadata``: the line carries its own)."""
    body: Mapping[str, Any]
    """The chat body the batch road sends."""
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class RoadOutcome:
    """One line's fate and the road it took."""

    custom_id: str
    via: str
    result: Result | None
    error: BaseException | None
    metadata: Any = None

    @property
    def ok(self) -> bool:
        """True when the line succeeded."""
        return self.result is not None


@dataclass(slots=True)
class RoadCosts:
    """US dollars spent on each road, and lines answered on each."""

    online_usd: float = 0.0
    batch_usd: float = 0.0
    online_lines: int = 0
    batch_lines: int = 0

    @property
    def same_work_online_usd(self) -> float:
        """What every answered line would have cost online (a batch line at full price)."""
        return self.online_usd + self.batch_usd / PRICE_FACTOR

    def add(self, outcome: RoadOutcome) -> None:
        if outcome.result is None:
            return
        usd = outcome.result.usage.cost_usd or 0.0
        if outcome.via == "batch":
            self.batch_usd += usd
            self.batch_lines += 1
        else:
            self.online_usd += usd
            self.online_lines += 1


class OnlineRoad(Submitter, Protocol):
    """What :class:`Roads` needs of a :class:`~grok_scheduler.Scheduler`."""

    @property
    def model(self) -> str: ...

    def statistics(self) -> SchedulerStatistics: ...


RECENT_SECONDS = 5.0
"""The window of the online road's measured throughput (see :func:`~._plan.rate_of`)."""


@dataclass(slots=True)
class _Progress:
    started: float | None = None
    online_done: int = 0
    diverted: int = 0
    finished_at: deque[float] = field(default_factory=deque)

    def finished(self, now: float) -> None:
        self.online_done += 1
        self.finished_at.append(now)

    def recent_rate(self, now: float) -> float | None:
        """Online lines a second over the last :data:`RECENT_SECONDS` (None: too early)."""
        times = self.finished_at
        while times and times[0] < now - RECENT_SECONDS:
            times.popleft()
        if self.started is None or now - self.started < RECENT_SECONDS:
            return None  # the opening burst would read as a rate
        return len(times) / RECENT_SECONDS


def _identity(item: Prepared) -> Prepared:
    return item


class Roads:
    """Runs lines on the online and batch roads; see the module doc."""

    __slots__ = (
        "_batch",
        "_changed",
        "_clock",
        "_planning",
        "_progress",
        "_road",
        "_scheduler",
        "_stream",
        "_waiting",
        "costs",
        "deadline",
        "replan_every",
        "via",
        "window",
    )

    def __init__(
        self,
        scheduler: OnlineRoad,
        road: BatchRoad,
        *,
        clock: Clock,
        via: str = "auto",
        deadline: float | None = None,
        window: int = 64,
        replan_every: float = 1.0,
    ) -> None:
        if via not in VIAS:
            raise ValueError(f"via must be one of {VIAS}, got {via!r}")
        if via == "auto" and deadline is None:
            raise ValueError("via='auto' needs a deadline")
        self._scheduler = scheduler
        self._road = road
        self._clock = clock
        self.via = via
        self.deadline = deadline
        self.window = window
        self.replan_every = replan_every
        self.costs = RoadCosts()
        self._waiting: deque[Line] = deque()  # online, not yet handed to the scheduler
        self._batch: dict[str, Line] = {}  # on the batch road, not yet answered
        self._planning = True
        self._changed = asyncio.Event()
        self._progress = _Progress()
        self._stream: OutcomeStream | None = None

    def __repr__(self) -> str:
        return (
            f"Roads(via={self.via!r}, deadline={self.deadline}, waiting={len(self._waiting)}, "
            f"on_batch={len(self._batch)}, diverted={self._progress.diverted})"
        )

    @property
    def road(self) -> BatchRoad:
        """The batch road."""
        return self._road

    @property
    def diverted(self) -> int:
        """Lines this run sent to the batch road (not counting ones a resumed run found)."""
        return self._progress.diverted

    def assign(self, lines: Iterable[Line]) -> None:
        """Put each line on its first road (call after ``road.resume()``)."""
        online: list[Line] = []
        for line in lines:
            if self._road.journal.submitted(line.custom_id):
                self._batch[line.custom_id] = line  # a resumed run's: poll it, never resend
            elif self.via == "batch" or road_for(line.priority, batch_available=True) == "batch":
                self._batch[line.custom_id] = line
            else:
                online.append(line)
        # Urgent lines first; the far end (the least urgent, latest) is what overflows.
        online.sort(key=lambda line: line.priority)
        self._waiting.extend(online)

    async def run(self, emit: Callable[[RoadOutcome], None]) -> None:
        """Run every assigned line; ``emit`` each outcome once, as it finishes."""

        def report(outcome: RoadOutcome) -> None:
            self.costs.add(outcome)
            emit(outcome)

        self._progress.started = self._clock.now()
        fresh = [
            (line.custom_id, line.body)
            for line in self._batch.values()
            if not self._road.journal.submitted(line.custom_id)
        ]
        if fresh:
            self._progress.diverted += len(fresh)
            await self._road.submit(fresh)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._online(report))
            tg.create_task(self._plan())
            tg.create_task(self._read_batch(report))

    def cancel_online(self) -> None:
        """Stop the online road: nothing more is sent; unfinished jobs are cancelled."""
        self._waiting.clear()
        if self._stream is not None:
            self._stream.cancel()

    # -- the online road ---------------------------------------------------------------------
    def _next_online(self) -> Iterator[Prepared]:
        while self._waiting:
            line = self._waiting.popleft()
            yield line.prompt, {**line.options, "priority": line.priority, "metadata": line}

    async def _online(self, report: Callable[[RoadOutcome], None]) -> None:
        if not self._waiting:
            return
        stream = OutcomeStream(
            self._scheduler, self._next_online(), window=self.window, prepare=_identity
        )
        self._stream = stream
        async with stream:
            async for outcome in stream:
                self._progress.finished(self._clock.now())
                report(_online_outcome(outcome))

    # -- the plan ----------------------------------------------------------------------------
    async def _plan(self) -> None:
        try:
            while self.via == "auto" and self._waiting:
                await self._divert()
                if self._waiting:
                    await self._clock.sleep(self.replan_every)
        finally:
            self._planning = False
            self._changed.set()

    async def _divert(self) -> None:
        assert self.deadline is not None
        stream = self._stream
        committed = stream.outstanding if stream is not None else 0
        n = overflow(
            waiting=len(self._waiting),
            committed=committed,
            now=self._clock.now(),
            deadline=self.deadline,
            estimate=self.estimate(),
        )
        moved: list[Line] = []
        while len(moved) < n and self._waiting and may_overflow(self._waiting[-1].priority):
            moved.append(self._waiting.pop())
        if not moved:
            return
        moved.reverse()
        for line in moved:
            self._batch[line.custom_id] = line
        self._progress.diverted += len(moved)
        self._changed.set()
        await self._road.submit((line.custom_id, line.body) for line in moved)

    def estimate(self) -> Estimate:
        """The online road's rate and tail as the scheduler knows them now."""
        stats = self._scheduler.statistics()
        lane = stats.models.get(self._scheduler.model)
        limiter = lane.limiter if lane is not None else stats.limiter
        rate = rate_of(
            requests_per_second=limiter.requests_per_second if limiter else None,
            tokens_per_minute=limiter.tokens_per_minute if limiter else None,
            tokens_per_call=stats.total_tokens / stats.completed if stats.completed else None,
            recent=self._progress.recent_rate(self._clock.now()),
        )
        return Estimate(rate=rate, tail=stats.call_time.p90 or 0.0)

    # -- the batch road ----------------------------------------------------------------------
    async def _read_batch(self, report: Callable[[RoadOutcome], None]) -> None:
        road = self._road
        wait = road.poll_min
        while True:
            if not self._batch:
                if not self._planning:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            # Planning over before this pass: every batch it made is in the pass.
            planned = not self._planning
            items, finished = await road.read_once()
            for item in items:
                line = self._batch.pop(item.custom_id, None)
                if line is None:
                    continue  # answered in an earlier run, or not a line of this run
                answer = batch_result(item, line.metadata)
                if isinstance(answer, Result):
                    report(RoadOutcome(line.custom_id, "batch", answer, None, line.metadata))
                else:
                    report(RoadOutcome(line.custom_id, "batch", None, answer, line.metadata))
            if finished and planned and self._batch:
                for line in self._batch.values():  # cancelled on the server, or lost
                    report(RoadOutcome(line.custom_id, "batch", None, unanswered(), line.metadata))
                self._batch.clear()
                return
            wait = road.poll_min if items else min(road.poll_max, wait * 2)
            await self._clock.sleep(wait)


def _online_outcome(outcome: Outcome) -> RoadOutcome:
    line: Line = outcome.metadata
    result = outcome.result
    if result is not None:
        result = dataclasses.replace(result, metadata=line.metadata)
    return RoadOutcome(line.custom_id, "online", result, outcome.error, line.metadata)
