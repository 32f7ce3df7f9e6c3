"""Two roads for one set of lines: online through the scheduler, and xAI's Batch API.

:class:`Roads` puts each line on exactly one road and reports every line's outcome once.
``via="batch"`` sends everything to the batch road. ``via="auto"`` with a deadline runs lines
online, one :class:`~._online.OnlineLane` per model (xAI limits each model on its own), and
every ``replan_every`` seconds asks :func:`~._plan.plan`, per model, how many of the lines
still waiting must leave for the batch road now, from that model's measured pace and learned
limit and from the batch road's delay as this run has seen it. Those leave the lane's queue
from its far end. Only lines not yet handed to the scheduler move, so an online retry never
races a batch copy, and a line sent to the batch road stays there. CRITICAL and HIGH lines are
never moved; LOW lines go to the batch road from the start (see :mod:`._plan`).

When the plan sees the deadline at risk (the batch road is not expected in time for lines the
online road cannot finish), :attr:`Roads.at_risk` says why and a
``grok_scheduler.batch_deadline_at_risk`` event is logged; lines answered after the deadline
are counted per road (:attr:`Roads.late`).

Lines the journal already holds (a resumed run) stay on the batch road and are only polled.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from .._clock import Clock
from .._core._map import Submitter
from .._errors import SchedulerError
from .._models import Result
from .._observe._events import events
from .._observe._stats import SchedulerStatistics
from ._answer import batch_result, unanswered
from ._online import Line, OnlineLane
from ._outcomes import RoadCosts, RoadOutcome
from ._plan import (
    BATCH_DELAY_PRIOR,
    Estimate,
    batch_delay_estimate,
    limit_rate,
    plan,
    road_for,
)
from ._road import BatchRoad

__all__ = ["Line", "RoadCosts", "RoadOutcome", "Roads"]

VIAS = ("batch", "auto")
PEAK_SECONDS = 30.0
"""How long the highest limit read stands for the generous reading."""


class OnlineRoad(Submitter, Protocol):
    """What :class:`Roads` needs of a :class:`~grok_scheduler.Scheduler`."""

    @property
    def model(self) -> str: ...

    def statistics(self) -> SchedulerStatistics: ...


class Roads:
    """Runs lines on the online and batch roads; see the module doc."""

    __slots__ = (
        "_batch",
        "_changed",
        "_clock",
        "_diverted",
        "_finished",
        "_lanes",
        "_longest_batch_delay",
        "_peak_limit",
        "_planning",
        "_road",
        "_scheduler",
        "_sent",
        "_sent_order",
        "at_risk",
        "batch_delay",
        "costs",
        "deadline",
        "last_risk",
        "late",
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
        batch_delay: float = BATCH_DELAY_PRIOR,
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
        self.batch_delay = batch_delay
        """Seconds the batch road is assumed to take until this run sees it answer."""
        self.costs = RoadCosts()
        self.at_risk: str | None = None
        """Why the deadline is at risk now (None: the plan expects to meet it)."""
        self.last_risk: str | None = None
        """The last reason the deadline was at risk during the run (None: never)."""
        self.late = {"online": 0, "batch": 0}
        """Lines answered after the deadline, per road."""
        self._lanes: dict[str, OnlineLane] = {}
        self._batch: dict[str, Line] = {}  # on the batch road, not yet answered
        self._sent: dict[str, float] = {}  # when this run sent each of those lines by batch
        self._sent_order: deque[tuple[float, str]] = deque()
        self._longest_batch_delay: float | None = None
        self._peak_limit: dict[str, tuple[float, float]] = {}  # the peak, and when read
        self._diverted = 0
        self._planning = True
        self._changed = asyncio.Event()
        self._finished: asyncio.Queue[RoadOutcome | None] = asyncio.Queue()

    def __repr__(self) -> str:
        waiting = sum(len(lane.waiting) for lane in self._lanes.values())
        return (
            f"Roads(via={self.via!r}, deadline={self.deadline}, waiting={waiting}, "
            f"on_batch={len(self._batch)}, diverted={self._diverted})"
        )

    @property
    def road(self) -> BatchRoad:
        """The batch road."""
        return self._road

    @property
    def diverted(self) -> int:
        """Lines this run sent to the batch road (not counting ones a resumed run found)."""
        return self._diverted

    def assign(self, lines: Iterable[Line]) -> None:
        """Put each line on its first road (call after ``road.resume()``)."""
        default = self._scheduler.model
        for line in lines:
            if self._road.journal.submitted(line.custom_id):
                self._batch[line.custom_id] = line  # a resumed run's: poll it, never resend
            elif self.via == "batch" or road_for(line.priority, batch_available=True) == "batch":
                self._batch[line.custom_id] = line
            else:
                model = line.model_or(default)
                lane = self._lanes.get(model)
                if lane is None:
                    lane = self._lanes[model] = OnlineLane(model, self.window)
                lane.waiting.append(line)
        for lane in self._lanes.values():
            # Urgent lines first; the far end (the least urgent, latest) is what overflows.
            lane.waiting = deque(sorted(lane.waiting, key=lambda line: line.priority))

    async def run(self, emit: Callable[[RoadOutcome], None]) -> None:
        """Run every assigned line; ``emit`` each outcome once, as it finishes."""

        def report(outcome: RoadOutcome) -> None:
            if self.deadline is not None and self._clock.now() > self.deadline:
                self.late[outcome.via] += 1
            self.costs.add(outcome)
            emit(outcome)

        fresh = [
            line
            for line in self._batch.values()
            if not self._road.journal.submitted(line.custom_id)
        ]
        if fresh:
            await self._send_by_batch(fresh)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._online(report))
            tg.create_task(self._plan())
            tg.create_task(self._read_batch(report))

    def cancel_online(self) -> None:
        """Stop the online road: nothing more is sent; unfinished jobs are cancelled."""
        for lane in self._lanes.values():
            lane.cancel()
        self._finished.put_nowait(None)

    # -- the online road ---------------------------------------------------------------------
    def _done(
        self, lane: OnlineLane, line: Line, fate: asyncio.Future[Result] | SchedulerError
    ) -> None:
        error: BaseException | None
        result: Result | None = None
        if isinstance(fate, SchedulerError):
            error = fate  # refused at submit: no call, no pace to count
        else:
            lane.finished(self._clock.now())
            if fate.cancelled():
                error = SchedulerError("the job was cancelled")
            else:
                error = fate.exception()
                if error is None:
                    result = dataclasses.replace(fate.result(), metadata=line.metadata)
        self._finished.put_nowait(
            RoadOutcome(line.custom_id, "online", result, error, line.metadata)
        )

    def _hand_over(self) -> None:
        for lane in self._lanes.values():
            lane.hand_over(self._scheduler, self._done)

    async def _online(self, report: Callable[[RoadOutcome], None]) -> None:
        self._hand_over()
        while any(lane.busy for lane in self._lanes.values()) or not self._finished.empty():
            outcome = await self._finished.get()
            if outcome is not None:  # None only wakes us: lines moved, or the road stopped
                report(outcome)
            self._hand_over()

    # -- the plan ----------------------------------------------------------------------------
    async def _plan(self) -> None:
        try:
            while self.via == "auto" and any(lane.waiting for lane in self._lanes.values()):
                moved = self._replan()
                if moved:
                    self._finished.put_nowait(None)  # the online loop may have nothing left
                    await self._send_by_batch(moved)
                await self._clock.sleep(self.replan_every)
        finally:
            self._planning = False
            self._changed.set()

    def _replan(self) -> list[Line]:
        """One plan per model: the lines to move now; also sizes each lane's hand-over room."""
        assert self.deadline is not None
        now = self._clock.now()
        stats = self._scheduler.statistics()
        delay = self.batch_delay_estimate()
        moved: list[Line] = []
        risky: list[str] = []
        for lane in self._lanes.values():
            model = stats.models.get(lane.model)
            estimate = self.estimate(lane.model, stats)
            queued = max(0, lane.handed_over - (model.in_flight if model is not None else 0))
            decision = plan(
                waiting=len(lane.waiting),
                queued=queued,
                now=now,
                deadline=self.deadline,
                estimate=estimate,
                batch_delay=delay,
                replan_every=self.replan_every,
            )
            moved.extend(lane.take_overflow(decision.divert))
            lane.size_room(model, estimate, floor=self.window)
            if decision.at_risk:
                risky.append(f"{lane.model}: {decision.divert}")
        self._judge_risk(risky, delay, now)
        return moved

    def _judge_risk(self, risky: list[str], delay: float, now: float) -> None:
        assert self.deadline is not None
        if not risky:
            self.at_risk = None
            return
        seen = "" if self._longest_batch_delay is not None else " (assumed: no batch answer yet)"
        reason = (
            f"the batch road is expected to take {delay:.0f} s{seen} and the deadline is in "
            f"{self.deadline - now:.0f} s; lines the online road cannot finish go by batch and "
            f"may be late ({', '.join(risky)})"
        )
        if self.at_risk is None:
            events.warning(
                "grok_scheduler.batch_deadline_at_risk",
                batch_delay=round(delay, 1),
                seconds_left=round(self.deadline - now, 1),
                diverted=", ".join(risky),
            )
        self.at_risk = self.last_risk = reason

    def estimate(self, model: str, stats: SchedulerStatistics | None = None) -> Estimate:
        """One model's online pace as the run knows it now (see :class:`~._plan.Estimate`)."""
        stats = stats if stats is not None else self._scheduler.statistics()
        lane_stats = stats.models.get(model)
        lane = self._lanes.get(model)
        measured = lane.rates(self._clock.now()) if lane is not None else None
        limit = None
        tail = stats.call_time.p90 or 0.0
        if lane_stats is not None:
            limiter = lane_stats.limiter
            limit = limit_rate(
                requests_per_second=limiter.requests_per_second,
                tokens_per_minute=limiter.tokens_per_minute,
                tokens_per_call=stats.total_tokens / stats.completed if stats.completed else None,
            )
            tail = lane_stats.slow_latency or tail
        # The controller's rate probes up and down around the limit, and swings well below it
        # while it is still finding it: the generous reading takes the highest it has read
        # lately (a limit that really fell is forgotten after a while).
        now = self._clock.now()
        peak, at = self._peak_limit.get(model, (0.0, now))
        if limit is not None and (limit >= peak or now - at > PEAK_SECONDS):
            peak, at = limit, now
        self._peak_limit[model] = (peak, at)
        if measured is None:
            return Estimate(low=limit, pace=None, high=peak or None, tail=tail)
        # Once the road has a pace, what it did is what counts: a road held back by anything
        # (the controller's probing, retries, a token limit) never reaches the limit.
        pace = max(measured)
        return Estimate(low=min(measured), pace=pace, high=max(pace, peak), tail=tail)

    @property
    def longest_batch_delay(self) -> float | None:
        """The longest a line of this run took from being sent by batch to being read back."""
        return self._longest_batch_delay

    def batch_delay_estimate(self) -> float:
        """Seconds to expect from sending a line by batch to reading its answer, as seen."""
        order = self._sent_order
        while order and order[0][1] not in self._sent:
            order.popleft()
        oldest = self._clock.now() - order[0][0] if order else None
        return batch_delay_estimate(
            prior=self.batch_delay, longest_seen=self._longest_batch_delay, oldest_waiting=oldest
        )

    # -- the batch road ----------------------------------------------------------------------
    async def _send_by_batch(self, lines: list[Line]) -> None:
        now = self._clock.now()
        for line in lines:
            self._batch[line.custom_id] = line
            self._sent[line.custom_id] = now
            self._sent_order.append((now, line.custom_id))
        self._diverted += len(lines)
        self._changed.set()
        await self._road.submit((line.custom_id, line.body) for line in lines)

    def _answered_by_batch(self, custom_id: str) -> None:
        sent = self._sent.pop(custom_id, None)
        if sent is not None:
            delay = self._clock.now() - sent
            self._longest_batch_delay = max(delay, self._longest_batch_delay or 0.0)

    async def _read_batch(self, report: Callable[[RoadOutcome], None]) -> None:
        road = self._road
        wait = road.poll_min
        warned_late = False
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
                self._answered_by_batch(item.custom_id)
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
            if not warned_late and self._past_deadline() and self._batch:
                warned_late = True
                events.warning("grok_scheduler.batch_late", unanswered=len(self._batch))
            wait = road.poll_min if items else min(road.poll_max, wait * 2)
            await self._clock.sleep(wait)

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self._clock.now() > self.deadline
