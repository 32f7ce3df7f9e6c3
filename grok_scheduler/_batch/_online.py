"""One model's lines on the online road: those waiting, those handed over, and its pace.

A line waits here until :meth:`OnlineLane.hand_over` gives it to the scheduler; only a waiting
line can still move to the batch road (:meth:`OnlineLane.take_overflow`, from the far end of
the queue), so an online retry never races a batch copy. The lane hands over just enough lines
to keep the scheduler busy (``room``): a line given to the scheduler is committed for good.

:meth:`OnlineLane.rates` measures the lane's completions over a short and a longer stretch:
the plan trusts what the road did, not what it was told (a window too small for the latency,
a limit that fell, retries eating the rate all show there).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._core._map import Submitter
from .._errors import SchedulerError
from .._models import Result
from .._observe._stats import ModelStatistics
from ._plan import Estimate, may_overflow

__all__ = ["SHORT_SECONDS", "LONG_SECONDS", "Line", "OnlineLane"]

SHORT_SECONDS = 10.0
"""The recent stretch: a fall of the rate shows here first."""
LONG_SECONDS = 30.0
"""The longer stretch: the rate controller's probing up and down averages out here."""
WARM_SECONDS = 5.0
"""Completions before this long after the first are no rate yet: the opening burst is not one."""
QUEUE_SECONDS = 1.0
"""Beyond the calls the scheduler may have in flight, a lane hands over this many seconds of
sends to queue there: refilled at every answer, it keeps the road busy, and little is
committed for good."""
MIN_ROOM = 4


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

    def model_or(self, default: str) -> str:
        """The model the line names (its options, then its body), else ``default``."""
        for source in (self.options, self.body):
            model = source.get("model")
            if isinstance(model, str) and model:
                return model
        return default


Done = Callable[["OnlineLane", Line, "asyncio.Future[Result] | SchedulerError"], None]
"""Called once per handed-over line: its finished future, or the error ``submit`` raised."""


class OnlineLane:
    """One model's online lines; see the module doc."""

    __slots__ = ("_finished_at", "_first_done", "_pending", "model", "room", "waiting")

    def __init__(self, model: str, room: int) -> None:
        self.model = model
        self.room = room
        """Lines to keep handed over (sent or queued in the scheduler) at most."""
        self.waiting: deque[Line] = deque()
        self._pending: dict[asyncio.Future[Result], Line] = {}
        self._finished_at: deque[float] = deque()
        self._first_done: float | None = None

    def __repr__(self) -> str:
        return (
            f"OnlineLane(model={self.model!r}, waiting={len(self.waiting)}, "
            f"handed_over={len(self._pending)}, room={self.room})"
        )

    @property
    def handed_over(self) -> int:
        """Lines given to the scheduler and not finished."""
        return len(self._pending)

    @property
    def busy(self) -> bool:
        """Lines wait or are handed over."""
        return bool(self.waiting or self._pending)

    def hand_over(self, scheduler: Submitter, done: Done) -> None:
        """Give the scheduler waiting lines, urgent first, until ``room`` are handed over."""
        while self.waiting and len(self._pending) < self.room:
            line = self.waiting.popleft()
            options = {**line.options, "priority": line.priority, "metadata": line}
            try:
                future = scheduler.submit_nowait(line.prompt, **options)
            except SchedulerError as exc:
                done(self, line, exc)
                continue
            self._pending[future] = line
            future.add_done_callback(lambda f: self._finished(f, done))

    def _finished(self, future: asyncio.Future[Result], done: Done) -> None:
        line = self._pending.pop(future, None)
        if line is not None:  # None: cancelled by cancel()
            done(self, line, future)

    def size_room(self, model: ModelStatistics | None, estimate: Estimate, *, floor: int) -> None:
        """Hand over what the scheduler can have in flight, plus a short queue.

        In flight: the scheduler's own cap, or the calls the pace keeps in flight for a tail
        each. Lines handed over cannot move, so near the deadline a deep queue would commit
        lines the road cannot start in time. ``floor`` until the lane has a rate.
        """
        rate = estimate.pace or estimate.high
        if model is None or not rate:
            self.room = floor
            return
        in_flight = min(model.concurrency_limit, math.ceil(rate * estimate.tail * 1.25) + 1)
        self.room = max(MIN_ROOM, in_flight + math.ceil(rate * QUEUE_SECONDS))

    def take_overflow(self, count: int) -> list[Line]:
        """Up to ``count`` waiting lines from the far end (the least urgent), in queue order.

        Stops at a line that may not leave the online road (CRITICAL, HIGH).
        """
        moved: list[Line] = []
        while len(moved) < count and self.waiting and may_overflow(self.waiting[-1].priority):
            moved.append(self.waiting.pop())
        moved.reverse()
        return moved

    def cancel(self) -> None:
        """Nothing more is handed over; handed-over lines are cancelled (and not reported)."""
        self.waiting.clear()
        pending, self._pending = self._pending, {}
        for future in pending:
            future.cancel()

    # -- the pace ------------------------------------------------------------------------------
    def finished(self, now: float) -> None:
        """Count one handed-over line as finished at ``now`` (answered or failed for good)."""
        if self._first_done is None:
            self._first_done = now
        times = self._finished_at
        times.append(now)
        while times and times[0] <= now - LONG_SECONDS:
            times.popleft()

    def rates(self, now: float) -> tuple[float, float] | None:
        """Lines a second over the last :data:`SHORT_SECONDS` and :data:`LONG_SECONDS`.

        None until :data:`WARM_SECONDS` after the first completion; before a stretch is full it
        is measured from the first completion.
        """
        first = self._first_done
        if first is None or now - first < WARM_SECONDS:
            return None
        times = self._finished_at
        while times and times[0] <= now - LONG_SECONDS:
            times.popleft()
        short_span = min(SHORT_SECONDS, now - first)
        long_span = min(LONG_SECONDS, now - first)
        recent = 0
        for t in reversed(times):
            if t <= now - short_span:
                break
            recent += 1
        return recent / short_span, len(times) / long_span
