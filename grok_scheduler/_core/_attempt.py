"""The worker pool: each worker takes an admitted job, sends it, and hands back the answer.

``max_concurrency`` worker tasks take turns at one :class:`Gate`, which decides which job goes
(with its credit reserved). A worker then encodes the job, sends it within its timeout, feeds
the server's stated limits to the limiter, and leaves the job's fate to the
:class:`OutcomeHandler`. A worker never dies of one job's trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable

from .._clock import Clock
from .._errors import APITimeoutError, InvalidJobError, SchedulerClosedError, SchedulerError
from .._guards._breaker import CircuitBreaker
from .._guards._timeouts import CallTimeouts
from .._limits._adaptive import RateController
from .._limits._local import Limiter
from .._observe._alerts import AlertMonitor
from .._observe._events import events as _log
from .._observe._stats import StatsRecorder
from .._transports._base import Transport, TransportResponse
from .._wire._headers import parse_rate_limit_headers
from ._gate import Gate, GateState, Wakeup
from ._job import Job
from ._outcome import OutcomeHandler
from ._queue import JobQueue
from ._settings import SchedulerSettings

__all__ = ["WorkerPool"]

# After an unexpected error at the gate (a custom limiter failing), wait this long, then retry.
_GATE_ERROR_PAUSE = 0.1


class WorkerPool:
    """``max_concurrency`` workers: gate -> one call on the transport -> outcome."""

    __slots__ = (
        "_clock",
        "_controller",
        "_gate",
        "_limiter",
        "_log_jobs",
        "_outcome",
        "_poke",
        "_size",
        "_state",
        "_stats",
        "_tasks",
        "_timeout",
        "_timeouts",
        "_transport",
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
        transport: Transport,
        outcome: OutcomeHandler,
        timeouts: CallTimeouts,
        stats: StatsRecorder,
        settings: SchedulerSettings,
    ) -> None:
        self._gate = Gate(
            queue=queue,
            limiter=limiter,
            controller=controller,
            breaker=breaker,
            alerts=alerts,
            clock=clock,
            state=state,
            wakeup=wakeup,
            fail=outcome.fail,
            settings=settings,
        )
        self._state = state
        self._poke: Callable[[], None] = wakeup.poke
        self._limiter = limiter
        self._controller = controller
        self._transport = transport
        self._outcome = outcome
        self._clock = clock
        self._timeouts = timeouts
        self._stats = stats
        self._timeout = settings.timeout
        self._log_jobs = settings.log_jobs
        self._size = settings.max_concurrency
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return (
            f"WorkerPool(size={self._size}, timeout={self._timeout}, "
            f"running={sum(not task.done() for task in self._tasks)}, "
            f"in_flight={self._state.in_flight})"
        )

    def start(self) -> None:
        """Start the workers."""
        self._tasks = [
            asyncio.create_task(self.work(), name=f"grok-scheduler-worker-{i}")
            for i in range(self._size)
        ]

    async def join(self, *, cancel: bool) -> None:
        """Wait for every worker to stop (they stop once closing and the queue is empty)."""
        if self._tasks:
            if cancel:
                for task in self._tasks:
                    task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def work(self) -> None:
        """One worker: until the gate says stop, take the next job and make one attempt."""
        while True:
            try:
                job = await self._gate.next_job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a custom limiter failing: keep the worker alive
                with contextlib.suppress(Exception):
                    _log.exception("grok_scheduler.internal_error", error_type=type(exc).__name__)
                await self._clock.sleep(_GATE_ERROR_PAUSE)
                continue
            if job is None:
                return
            try:
                await self._run(job)
            except asyncio.CancelledError:
                self._outcome.fail(job, SchedulerClosedError("the scheduler was closed mid-call"))
                raise
            except Exception as exc:  # a bug must fail one job, never kill a worker
                self._outcome.fail(job, SchedulerError(f"internal error: {type(exc).__name__}"))
                with contextlib.suppress(Exception):
                    _log.exception("grok_scheduler.internal_error", error_type=type(exc).__name__)

    async def _run(self, job: Job) -> None:
        clock = self._clock
        started = clock.now()
        try:
            body = json.dumps(job.payload(), separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            # Checked at submit already; a message list mutated since then still ends cleanly.
            self._limiter.refund(job.estimated_tokens, started)
            self._outcome.fail(job, InvalidJobError(f"the request cannot be sent as JSON: {exc}"))
            return
        job.attempts += 1
        job.queued_seconds += started - job.eligible_at
        self._state.call_started(started)
        self._stats.dispatched()
        if self._log_jobs:
            _log.debug(
                "grok_scheduler.dispatched",
                priority=job.priority,
                attempt=job.attempts,
                queued_seconds=round(job.queued_seconds, 4),
                in_flight=self._state.in_flight,
            )
        # A timeout the user chose is a contract and stays; a learned one that fired grows.
        timeout = (
            job.timeout
            or self._timeout
            or self._timeouts.timeout_for(job.max_tokens, timed_out=_timed_out(job))
        )
        if job.deadline is not None:
            timeout = max(0.001, min(timeout, job.deadline - started))
        try:
            response = await self._transport.send(job.endpoint.value, body, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = clock.now()
            job.in_flight_seconds += now - started
            self._outcome.raised(job, exc, now, started)
            return
        finally:
            if self._state.call_ended():
                self._poke()
        now = clock.now()
        elapsed = now - started
        job.in_flight_seconds += elapsed
        self._observe_headers(response, now)
        self._outcome.answered(job, response, now, elapsed, started)

    def _observe_headers(self, response: TransportResponse, now: float) -> None:
        try:
            headers = parse_rate_limit_headers(response.headers)
        except Exception:  # the parsers promise not to raise; a header must never kill a job
            return
        if headers.is_empty:
            return
        # Stated limits go through the controller (it owns the rates); the limiter only
        # synchronises its level with what the server says remains. Whatever a header holds,
        # the answer it came with still counts.
        try:
            if self._controller is not None:
                self._controller.on_headers(headers, now)
            self._limiter.observe_headers(
                dataclasses.replace(headers, requests_limit=None, tokens_limit=None), now
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                _log.warning("grok_scheduler.bad_headers", error_type=type(exc).__name__)


def _timed_out(job: Job) -> int:
    """How many of the job's earlier attempts hit their timeout."""
    return sum(record.error_type == APITimeoutError.__name__ for record in job.history)
