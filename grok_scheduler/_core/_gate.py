"""Admission: which job goes next, and when.

Workers take turns at one gate. The worker at the gate looks at the most urgent eligible job of
each model's lane, most urgent lane first, and asks that lane's limiter for credit. The first
job whose credit is there goes; a job waiting for its own model's credit never holds back a job
of another model (no head-of-line blocking), and within a model priority order holds. When no
lane can go, the worker sleeps until the earliest moment one can, or until something changes (a
more urgent job arrives, credit is refunded, limits change, a call ends), never polling.

Each lane bounds its calls in flight by Little's law (``_limits/_concurrency.py``), keeps the
last of them free for urgent work while urgent work keeps arriving, and the whole pool sends one
call at a time until the server has first answered (at most 0.5 s). A lane that knows nothing of
its limits then sends on its first-contact ramp (``_limits/_ramp.py``), and a lane whose limiter
raises three times in a row fails its queued jobs with ``LimiterError``.

The state the gate shares with ``submit`` and with the attempts (calls in flight, first
contact, the urgent hold) is one small :class:`GateState`, passed to each explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from .._clock import Clock, TimerHandle
from .._errors import DeadlineExceededError, LimiterError, SchedulerError
from .._guards._breaker import CircuitBreaker
from .._models import Priority
from .._observe._alerts import AlertMonitor
from .._observe._events import events as _log
from ._job import Job
from ._lanes import Lane, Lanes
from ._settings import SchedulerSettings

__all__ = ["Gate", "GateState", "Wakeup"]

# Until the first answer, at most this long with a single call in flight: a refused key or an
# empty account answers within a round trip, long before a generated answer would.
_FIRST_CONTACT = 0.5
# The shortest sleep at the gate: below it, float time might not advance at all.
_MIN_WAIT = 1e-6
# The longest sleep for a lane's credit: the rate controller grows a cut rate only when ticked
# while the gate waits for that lane (within its 2 s "limited recently"), and the gate is what
# ticks it. Sleeping a whole credit wait (20 s at 0.05 rps) would leave a collapsed rate there.
_GROWTH_TICK = 1.0
# After a lane's limiter raised (a custom one failing), look at that lane again this much later,
# four times longer after each failure in a row...
_LIMITER_ERROR_PAUSE = 0.1
# ...and after this many in a row (about half a second), fail the lane's queued jobs with
# LimiterError instead of leaving them pending for ever. Later jobs try the limiter afresh.
_LIMITER_FAILURES = 3


class GateState:
    """What the gate shares with submit and with the attempts.

    ``in_flight`` counts calls on the wire; ``first_call_at``/``heard_back`` hold the pool to
    one call until the server first answers; ``last_urgent_at``/``waiting_for_slot`` drive the
    urgent hold; ``closing`` means no job will be submitted any more; ``paused`` that none is
    sent until resumed (closing overrides it: a graceful close finishes the queue).
    """

    __slots__ = (
        "closing",
        "first_call_at",
        "heard_back",
        "in_flight",
        "last_urgent_at",
        "paused",
        "waiting_for_slot",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.first_call_at: float | None = None
        self.heard_back = False
        self.last_urgent_at = -math.inf
        self.waiting_for_slot = False
        self.closing = False
        self.paused = False

    def __repr__(self) -> str:
        return (
            f"GateState(in_flight={self.in_flight}, heard_back={self.heard_back}, "
            f"waiting_for_slot={self.waiting_for_slot}, closing={self.closing})"
        )

    def call_started(self, now: float) -> None:
        """A call goes on the wire."""
        self.in_flight += 1
        if self.first_call_at is None:
            self.first_call_at = now

    def call_ended(self) -> bool:
        """A call came back (or failed); True when the gate must be woken for it."""
        self.in_flight -= 1
        # The first answer opens the pool; a freed slot may be what a held job waits for.
        if not self.heard_back or self.waiting_for_slot:
            self.heard_back = True
            return True
        return False


class Wakeup:
    """The gate's one wake-up: a future the waiting worker sleeps on, and a timer for it."""

    __slots__ = ("_clock", "_future")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._future: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"Wakeup(waiting={self._future is not None})"

    def poke(self) -> None:
        """Wake the worker at the gate: something changed that may let a job go sooner."""
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, until: float | None) -> None:
        """Sleep until :meth:`poke` or until ``until`` (None: only a poke ends it)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._future = future
        timer: TimerHandle | None = None
        if until is not None:
            timer = self._clock.call_at(until, self.poke)
        try:
            await future
        finally:
            self._future = None
            if timer is not None:
                timer.cancel()


class Gate:
    """Hands each worker the next job to send, with its credit already reserved."""

    __slots__ = (
        "_alerts",
        "_breaker",
        "_clock",
        "_fail",
        "_global_cap",
        "_lanes",
        "_lock",
        "_release",
        "_state",
        "_urgent_share",
        "_urgent_window",
        "_wakeup",
    )

    def __init__(
        self,
        *,
        lanes: Lanes,
        breaker: CircuitBreaker,
        alerts: AlertMonitor,
        clock: Clock,
        state: GateState,
        wakeup: Wakeup,
        fail: Callable[[Job, SchedulerError], None],
        release: Callable[[Job], None],
        settings: SchedulerSettings,
    ) -> None:
        self._lanes = lanes
        self._breaker = breaker
        self._alerts = alerts
        self._clock = clock
        self._state = state
        self._wakeup = wakeup
        self._fail = fail
        self._release = release
        self._global_cap = settings.max_concurrency or settings.concurrency_cap
        self._urgent_share = settings.urgent_share
        self._urgent_window = settings.urgent_window
        # One worker at the gate at a time: credit is then granted strictly in queue order.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"Gate(global_cap={self._global_cap}, urgent_share={self._urgent_share}, "
            f"urgent_window={self._urgent_window}, queued={self._lanes.queued()}, "
            f"in_flight={self._state.in_flight})"
        )

    def _holding_for_urgent(self, lane: Lane, limit: int, now: float) -> bool:
        """True when non-urgent work of ``lane`` must leave its reserved slots free."""
        slots = int(self._urgent_share * limit)
        return (
            slots > 0
            and now - self._state.last_urgent_at < self._urgent_window
            and lane.in_flight >= limit - slots
        )

    async def next_job(self) -> Job | None:
        """The next job to send with its credit reserved, or None when it is time to stop."""
        state, lanes, wakeup = self._state, self._lanes, self._wakeup
        async with self._lock:
            while True:
                now = self._clock.now()
                heads = [(job, lane) for lane in lanes if (job := lane.queue.peek(now))]
                if not heads:
                    if state.closing and lanes.queued() == 0:
                        wakeup.poke()
                        return None
                    await wakeup.wait(lanes.next_eligible_at())
                    continue
                if state.paused and not state.closing:
                    await wakeup.wait(None)  # resume() or aclose() pokes
                    continue
                if state.first_call_at is not None and not state.heard_back:
                    # Until the server has answered once, one call at a time: a wrong key or
                    # an empty account then costs one request, not a whole pool of them, and
                    # stated limits arrive before the first burst. A slow first answer must
                    # not stall the run, so this lasts at most _FIRST_CONTACT seconds.
                    opens_at = state.first_call_at + _FIRST_CONTACT
                    if now < opens_at:
                        await wakeup.wait(opens_at)
                        continue
                    state.heard_back = True
                    lanes.open_with_half_a_burst(now)
                state.waiting_for_slot = False
                if state.in_flight >= self._global_cap:
                    state.waiting_for_slot = True
                    await wakeup.wait(lanes.next_eligible_at())
                    continue
                heads.sort(key=lambda head: head[0].key)
                outcome = await self._admit_one(heads, now)
                if isinstance(outcome, Job):
                    return outcome
                if outcome is None:
                    continue
                until = outcome
                eligible = lanes.next_eligible_at()
                if eligible is not None:
                    until = min(until, eligible)
                await wakeup.wait(None if until == math.inf else until)

    def _fail_lane(self, lane: Lane, cause: Exception) -> None:
        """The lane's limiter raised again and again: fail its queued jobs, never sent."""
        failures = lane.limiter_failures
        lane.limiter_failures = 0
        for job in lane.queue.drain():
            error = LimiterError(
                f"not sent: the limiter of model {lane.model!r} raised {failures} times in a "
                f"row ({type(cause).__name__})"
            )
            error.__cause__ = cause
            self._fail(job, error)

    async def _admit_one(self, heads: list[tuple[Job, Lane]], now: float) -> Job | float | None:
        """Admit the first head whose lane has a slot and credit.

        Returns the job, None to look again at once, or the earliest time a lane may go.
        """
        state = self._state
        until = math.inf
        for job, lane in heads:
            limit = lane.concurrency_limit()
            if lane.in_flight >= limit:
                grows_at = lane.concurrency.on_saturated(now)
                if grows_at <= now:
                    return None  # the bound just grew: look again
                until = min(until, grows_at)
                state.waiting_for_slot = True
                continue
            urgent_only = False
            if job.priority > Priority.HIGH and self._holding_for_urgent(lane, limit, now):
                # The last slots are kept for urgent work while it keeps arriving. An urgent
                # job behind an aged one may take them; otherwise the next call to finish,
                # or a retry falling due, wakes the gate.
                urgent = lane.queue.peek(now, urgent_only=True)
                if urgent is None:
                    state.waiting_for_slot = True
                    until = min(until, state.last_urgent_at + self._urgent_window)
                    continue
                job, urgent_only = urgent, True
            if job.future.done() or (job.deadline is not None and now >= job.deadline):
                # Cancelled (its done-callback may not have run yet) or out of time: never sent.
                lane.queue.pop(now, urgent_only=urgent_only)
                if not job.future.done():
                    self._fail(job, DeadlineExceededError("the job's deadline passed"))
                self._release(job)
                return None
            lane.controller.tick(now)
            ramp_wait = lane.ramp_wait(now)
            if ramp_wait > 0.0:
                # Nothing known of this model's limits yet: its calls leave on the ramp.
                until = min(until, now + max(ramp_wait, _MIN_WAIT))
                continue
            try:
                wait = await lane.limiter.acquire(job.estimated_tokens, now, job.priority)
            except Exception as exc:
                # A failing limiter holds back its own model's jobs only, never another model's.
                with contextlib.suppress(Exception):
                    _log.exception("grok_scheduler.internal_error", error_type=type(exc).__name__)
                lane.limiter_failures += 1
                if lane.limiter_failures >= _LIMITER_FAILURES:
                    self._fail_lane(lane, exc)
                    return None
                pause = _LIMITER_ERROR_PAUSE * 4 ** (lane.limiter_failures - 1)
                until = min(until, now + pause)
                continue
            lane.limiter_failures = 0
            if wait > 0.0:
                lane.controller.on_limited(now)
                until = min(until, now + min(max(wait, _MIN_WAIT), _GROWTH_TICK))
                continue
            if lane.ramp is not None:
                lane.ramp.take(now)
            now = self._clock.now()
            # Awaiting a shared limiter lets time pass: the job may have been cancelled, or a
            # more urgent retry may have become due and now stand in front.
            if job.future.done() or lane.queue.peek(now, urgent_only=urgent_only) is not job:
                lane.limiter.refund(job.estimated_tokens, now)
                return None
            # Asked only when the job will really go: half-open hands out one probe.
            blocked = self._breaker.delay(now)
            if blocked > 0.0:
                lane.limiter.refund(job.estimated_tokens, now)
                return now + blocked
            lane.queue.pop(now, urgent_only=urgent_only)
            # A failing alert sink must never lose the job just popped.
            with contextlib.suppress(Exception):
                self._alerts.record_queue_wait(now - job.submitted_at, now)
            return job
        return until
