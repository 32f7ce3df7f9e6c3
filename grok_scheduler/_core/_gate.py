"""Admission: which job goes next, and when.

A fixed pool of workers takes turns at one gate. The worker at the gate looks at the most
urgent eligible job and asks the limiter for its credit; if the limiter says "wait", the worker
sleeps until that moment or until something changes (a more urgent job arrives, credit is
refunded, limits change, a call ends), never polling. On the way the gate keeps the last worker
slots free for urgent work while it keeps arriving, and sends one call at a time until the
server has first answered.

The state the gate shares with ``submit`` and with the attempts (calls in flight, first
contact, the urgent hold) is one small :class:`GateState`, passed to each explicitly.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from .._clock import Clock, TimerHandle
from .._errors import DeadlineExceededError, SchedulerError
from .._guards._breaker import CircuitBreaker
from .._limits._adaptive import RateController
from .._limits._local import Limiter
from .._models import Priority
from .._observe._alerts import AlertMonitor
from ._job import Job
from ._queue import JobQueue
from ._settings import SchedulerSettings

__all__ = ["Gate", "GateState", "Wakeup"]

# Until the first answer, at most this long with a single call in flight.
_FIRST_CONTACT = 2.0
# The shortest sleep at the gate: below it, float time might not advance at all.
_MIN_WAIT = 1e-6


class GateState:
    """What the gate shares with submit and with the attempts.

    ``in_flight`` counts calls on the wire; ``first_call_at``/``heard_back`` hold the pool to
    one call until the server first answers; ``last_urgent_at``/``waiting_for_slot`` drive the
    urgent hold; ``closing`` means no job will be submitted any more.
    """

    __slots__ = (
        "closing",
        "first_call_at",
        "heard_back",
        "in_flight",
        "last_urgent_at",
        "waiting_for_slot",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.first_call_at: float | None = None
        self.heard_back = False
        self.last_urgent_at = -math.inf
        self.waiting_for_slot = False
        self.closing = False

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
        "_controller",
        "_fail",
        "_limiter",
        "_lock",
        "_max_concurrency",
        "_queue",
        "_state",
        "_urgent_slots",
        "_urgent_window",
        "_wakeup",
    )

    def __init__(
        self,
        *,
        queue: JobQueue,
        limiter: Limiter,
        controller: RateController | None,
        breaker: CircuitBreaker,
        alerts: AlertMonitor,
        clock: Clock,
        state: GateState,
        wakeup: Wakeup,
        fail: Callable[[Job, SchedulerError], None],
        settings: SchedulerSettings,
    ) -> None:
        self._queue = queue
        self._limiter = limiter
        self._controller = controller
        self._breaker = breaker
        self._alerts = alerts
        self._clock = clock
        self._state = state
        self._wakeup = wakeup
        self._fail = fail
        self._max_concurrency = settings.max_concurrency
        self._urgent_slots = settings.urgent_slots
        self._urgent_window = settings.urgent_window
        # One worker at the gate at a time: credit is then granted strictly in queue order.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"Gate(max_concurrency={self._max_concurrency}, urgent_slots={self._urgent_slots}, "
            f"urgent_window={self._urgent_window}, queued={len(self._queue)}, "
            f"in_flight={self._state.in_flight})"
        )

    def _holding_for_urgent(self, now: float) -> bool:
        """True when non-urgent work must leave the reserved slots free."""
        state = self._state
        return (
            self._urgent_slots > 0
            and now - state.last_urgent_at < self._urgent_window
            and state.in_flight >= self._max_concurrency - self._urgent_slots
        )

    async def next_job(self) -> Job | None:
        """The next job to send with its credit reserved, or None when it is time to stop."""
        state, queue, limiter, wakeup = self._state, self._queue, self._limiter, self._wakeup
        async with self._lock:
            while True:
                now = self._clock.now()
                job = queue.peek(now)
                if job is None:
                    if state.closing and len(queue) == 0:
                        wakeup.poke()
                        return None
                    await wakeup.wait(queue.next_eligible_at())
                    continue
                urgent_only = False
                if job.priority > Priority.HIGH and self._holding_for_urgent(now):
                    # The last slots are kept for urgent work while it keeps arriving. An urgent
                    # job behind an aged one may take them; otherwise the next call to finish,
                    # or a retry falling due, wakes the gate.
                    urgent = queue.peek(now, urgent_only=True)
                    if urgent is None:
                        state.waiting_for_slot = True
                        until = state.last_urgent_at + self._urgent_window
                        eligible = queue.next_eligible_at()
                        await wakeup.wait(until if eligible is None else min(until, eligible))
                        state.waiting_for_slot = False
                        continue
                    job, urgent_only = urgent, True
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
                if job.deadline is not None and now >= job.deadline:
                    queue.pop(now, urgent_only=urgent_only)
                    self._fail(job, DeadlineExceededError("the job's deadline passed"))
                    continue
                wait = await limiter.acquire(job.estimated_tokens, now, job.priority)
                if wait <= 0.0:
                    now = self._clock.now()
                    # Awaiting a shared limiter lets time pass: the job may have been cancelled,
                    # or a more urgent retry may have become due and now stand in front.
                    if job.cancelled or queue.peek(now, urgent_only=urgent_only) is not job:
                        limiter.refund(job.estimated_tokens, now)
                        continue
                    # Asked only when the job will really go: half-open hands out one probe.
                    blocked = self._breaker.delay(now)
                    if blocked > 0.0:
                        limiter.refund(job.estimated_tokens, now)
                        await wakeup.wait(now + blocked)
                        continue
                    queue.pop(now, urgent_only=urgent_only)
                    self._alerts.record_queue_wait(now - job.submitted_at, now)
                    return job
                if self._controller is not None:
                    self._controller.on_limited(now)
                until = now + max(wait, _MIN_WAIT)
                eligible = queue.next_eligible_at()
                if eligible is not None:
                    until = min(until, eligible)
                await wakeup.wait(until)
