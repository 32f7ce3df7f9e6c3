"""The worker pool: each worker takes an admitted job, sends it, and hands back the answer.

Workers take turns at one :class:`Gate`, which decides which job goes (with its credit
reserved). A worker then encodes the job, sends it within its timeout, feeds the server's
stated limits to the job's lane, and leaves the job's fate to the :class:`OutcomeHandler`. A
worker never dies of one job's trouble.

The pool grows with the work: whenever a worker leaves the gate with a job and none is left
waiting there, another starts, up to the pool's cap (``max_concurrency``, or the automatic cap
when calls in flight follow Little's law). Idle workers cost a parked task each.
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
from .._guards._timeouts import send_watched
from .._observe._alerts import AlertMonitor
from .._observe._events import events as _log
from .._observe._stats import StatsRecorder
from .._observe._timeline import Timeline
from .._transports._base import Transport, TransportResponse
from .._transports._streaming import StreamingTransport
from .._wire._header_limits import header_limits
from .._wire._headers import parse_rate_limit_headers
from .._wire._windows import ClientCount
from ._gate import Gate, GateState, Wakeup
from ._job import Job
from ._lanes import Lane, Lanes
from ._outcome import OutcomeHandler
from ._settings import SchedulerSettings
from ._stream import StreamState
from ._stream_call import Abandoned, Streamer, streams_on_wire

__all__ = ["WorkerPool"]

# After an unexpected error at the gate (a custom limiter failing), wait this long, then retry.
_GATE_ERROR_PAUSE = 0.1
# The client's own count that header windows are checked against: the last second.
_SEEN_WITHIN = 1.0
# Built once: json.dumps with any non-default argument builds a new encoder on every call.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


class WorkerPool:
    """Workers, grown on demand up to the cap: gate -> one call on the transport -> outcome."""

    __slots__ = (
        "_at_gate",
        "_cap",
        "_clock",
        "_gate",
        "_lanes",
        "_log_jobs",
        "_outcome",
        "_poke",
        "_state",
        "_stats",
        "_stopping",
        "_stream_on_wire",
        "_streamer",
        "_tasks",
        "_timeline",
        "_timeout",
        "_transport",
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
        transport: Transport,
        outcome: OutcomeHandler,
        stats: StatsRecorder,
        settings: SchedulerSettings,
        timeline: Timeline | None = None,
    ) -> None:
        self._timeline = timeline if timeline is not None else Timeline()
        self._gate = Gate(
            lanes=lanes,
            breaker=breaker,
            alerts=alerts,
            clock=clock,
            state=state,
            wakeup=wakeup,
            fail=outcome.fail,
            release=outcome.release_budget,
            settings=settings,
        )
        self._lanes = lanes
        self._state = state
        self._poke: Callable[[], None] = wakeup.poke
        self._transport = transport
        self._outcome = outcome
        self._clock = clock
        self._stats = stats
        self._timeout = settings.timeout
        self._log_jobs = settings.log_jobs
        self._cap = settings.connections
        self._tasks: list[asyncio.Task[None]] = []
        self._at_gate = 0
        self._stopping = False
        # Streamed jobs need a transport that can stream; Scheduler.stream refuses otherwise.
        self._streamer = (
            Streamer(clock=clock, transport=transport)
            if isinstance(transport, StreamingTransport)
            else None
        )
        # Submitted jobs stream on the wire only when the transport can: when asked, or by
        # default when a hung call sent plain would be held long (streams_on_wire).
        self._stream_on_wire = settings.stream_on_wire

    def __repr__(self) -> str:
        return (
            f"WorkerPool(cap={self._cap}, workers={len(self._tasks)}, "
            f"timeout={self._timeout}, in_flight={self._state.in_flight})"
        )

    @property
    def size(self) -> int:
        """Workers started so far."""
        return len(self._tasks)

    def start(self) -> None:
        """Start the first worker; more start as work arrives."""
        self._grow()

    def _grow(self) -> None:
        if self._stopping or len(self._tasks) >= self._cap:
            return
        name = f"grok-scheduler-worker-{len(self._tasks)}"
        self._tasks.append(asyncio.create_task(self.work(), name=name))

    async def join(self, *, cancel: bool) -> None:
        """Wait for every worker to stop (they stop once closing and the queue is empty)."""
        if cancel:
            self._stopping = True
            for task in self._tasks:
                task.cancel()
        # Workers may start more workers while draining: wait until none is left running.
        while any(not task.done() for task in self._tasks):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stopping = True

    async def work(self) -> None:
        """One worker: until the gate says stop, take the next job and make one attempt."""
        while True:
            self._at_gate += 1
            try:
                job = await self._gate.next_job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a custom limiter failing: keep the worker alive
                with contextlib.suppress(Exception):
                    _log.exception("grok_scheduler.internal_error", error_type=type(exc).__name__)
                await self._clock.sleep(_GATE_ERROR_PAUSE)
                continue
            finally:
                self._at_gate -= 1
            if job is None:
                return
            if self._at_gate == 0:
                self._grow()
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
        lane = self._lanes.get(job.model)
        if (
            self._streamer is not None
            and job.stream is None
            and job.raw_body is None
            and streams_on_wire(self._stream_on_wire, lane, job)
        ):
            job.stream = StreamState(silent=True)
        try:
            body = job.raw_bytes or _encode_json(job.payload()).encode()
        except (TypeError, ValueError) as exc:
            # Checked at submit already; a message list mutated since then still ends cleanly.
            lane.limiter.refund(job.estimated_tokens, started)
            self._outcome.fail(job, InvalidJobError(f"the request cannot be sent as JSON: {exc}"))
            return
        job.attempts += 1
        job.queued_seconds += started - job.eligible_at
        self._state.call_started(started)
        lane.in_flight += 1
        job.send_record = lane.controller.on_sent(job.estimated_tokens, started)
        self._stats.dispatched()
        self._timeline.sent(job.model, started, lane.in_flight)
        if self._log_jobs:
            _log.debug(
                "grok_scheduler.dispatched",
                priority=job.priority,
                attempt=job.attempts,
                queued_seconds=round(job.queued_seconds, 4),
                in_flight=self._state.in_flight,
            )
        # A timeout the user chose is a contract and stays; a learned one that fired grows,
        # and is asked again while the call lasts (send_watched).
        chosen = job.timeout or self._timeout
        # The ticket counts this call among its model's calls in flight: a bound learned from
        # the first answers of a wave still running is not trusted to cut the rest of it.
        streamed = job.stream is not None and self._streamer is not None
        # A streamed attempt's silences are the watchdog's to record, not the plain road's.
        ticket = lane.timeouts.begin(None if streamed else started)
        timeout = chosen or lane.timeouts.timeout_for(
            job.max_tokens, timed_out=_timed_out(job), ticket=ticket, now=started
        )
        if job.deadline is not None:
            timeout = max(0.001, min(timeout, job.deadline - started))
        job.last_response = None
        try:
            if streamed and self._streamer is not None:
                lane.timeouts.end(ticket)  # a stream has its own watchdog
                # A streamed job: only a timeout the caller chose bounds the whole stream.
                given = job.timeout or self._timeout
                if job.deadline is not None:
                    given = timeout if given is None else min(given, timeout)
                answer = await self._streamer.call(job, lane, body, given)
            else:
                answered = False
                try:
                    answer = await send_watched(
                        self._transport,
                        clock,
                        job.endpoint.value,
                        body,
                        started=started,
                        timeout=timeout,
                        bound=None if chosen else _learned_bound(lane, job, ticket, clock),
                    )
                    answered = True
                finally:
                    lane.timeouts.end(ticket, clock.now(), answered=answered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = clock.now()
            job.in_flight_seconds += now - started
            self._outcome.raised(job, exc, now, started)
            return
        finally:
            lane.in_flight -= 1
            first_answer = not self._state.heard_back
            # A freed slot of a lane at its bound is what a waiting job may need.
            if self._state.call_ended() or lane.in_flight + 1 >= lane.concurrency_limit():
                self._poke()
            if first_answer:
                self._lanes.open_with_half_a_burst(clock.now())
        now = clock.now()
        elapsed = now - started
        job.in_flight_seconds += elapsed
        if isinstance(answer, Abandoned):
            self._outcome.abandoned(job, answer.tokens, now)
            return
        response = answer
        job.last_response = response
        self._observe_headers(lane, response, now, elapsed)
        self._outcome.answered(job, response, now, elapsed, started)

    def _observe_headers(
        self, lane: Lane, response: TransportResponse, now: float, elapsed: float
    ) -> None:
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
            controller = lane.controller
            stated = header_limits(
                headers,
                requests_seen=ClientCount(
                    controller.accepted("requests", _SEEN_WITHIN, now), _SEEN_WITHIN
                ),
            )
            if stated.requests_per_second is not None or stated.tokens_per_minute is not None:
                # Stated on a 429, the server's bucket just ran dry: the limiter starts empty.
                controller.on_stated(
                    requests_per_second=stated.requests_per_second,
                    tokens_per_minute=stated.tokens_per_minute,
                    now=now,
                    reason="headers on a 429" if response.status == 429 else "headers",
                )
            # What remains was counted when the call arrived, not now: the limiter ages it
            # from the send (refilled since, minus what was sent since).
            lane.limiter.observe_headers(
                dataclasses.replace(
                    headers, requests_limit=None, tokens_limit=None, counted_at=now - elapsed
                ),
                now,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                _log.warning("grok_scheduler.bad_headers", error_type=type(exc).__name__)


def _learned_bound(lane: Lane, job: Job, ticket: int, clock: Clock) -> Callable[[], float]:
    """The job's learned call bound as its model knows it now (for send_watched)."""
    timed_out = _timed_out(job)
    return lambda: lane.timeouts.timeout_for(
        job.max_tokens, timed_out=timed_out, ticket=ticket, now=clock.now()
    )


def _timed_out(job: Job) -> int:
    """How many of the job's earlier attempts hit their timeout."""
    return sum(record.error_type == APITimeoutError.__name__ for record in job.history)
