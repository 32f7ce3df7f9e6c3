"""One streamed attempt: open the stream, hand deltas to the caller, cut it if it goes silent.

The worker pool calls :meth:`Streamer.call` instead of ``transport.send`` for a job of
``Scheduler.stream``. The answer comes back in the shape the outcome path already knows: a
complete stream as the 200 body a non-streamed call would have returned, an error frame inside
the stream as the status and body it stands for, a cut or hung stream as a raised
:class:`APIConnectionError` / :class:`APITimeoutError`. So retries, credit and learning stay in
:mod:`._outcome`, written once.

The hang watchdog is one clock timer per attempt, re-armed at every chunk: the first byte must
come within the model's learned first-byte bound, each later chunk within its gap bound
(:class:`StreamWatch`). A silent stream's reading task is cancelled, which closes its connection.
The bound is asked again as the silence lasts (on a doubling schedule from the floor), so an
attempt sent before anything was learned is judged by what its model showed since: an early
hang is cut in seconds, not at the prior. Each attempt's time to its first answer is taught to
the watch the moment it arrives, not when its stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass

from .._clock import Clock, TimerHandle
from .._errors import APIConnectionError, APIResponseValidationError, APITimeoutError
from .._guards._watchdog import StreamWatch
from .._transports._base import TransportResponse
from .._transports._streaming import StreamBody, StreamingTransport
from .._wire._classify import Verdict, carry
from .._wire._sse import SseDecoder
from .._wire._stream_frames import Delta, ErrorFrame, StreamAssembler
from ._job import Job
from ._lanes import Lane
from ._stream import StreamChunk, StreamState

__all__ = ["Abandoned", "Streamer", "streams_on_wire"]

# Connecting (not answering) must not take long; the watchdog bounds everything after it.
_CONNECT_TIMEOUT = 30.0
# stream_on_wire=None (the default) streams a submitted job on the wire when a hung call of it,
# sent plain, would be held longer than this. Streaming costs client CPU for every event (about
# 10 us each, measured: benchmarks/stream_faults.py --part cpu), which fast short calls would
# pay on every job for nothing: their whole-call bound is a few seconds, about what the
# watchdog's floor is. Slow calls, calls bounded by a large max_tokens and calls without one
# (bounded as if they may answer a whole context) would hold a hang for tens of seconds to
# fifteen minutes; streamed, a silent one is cut within seconds.
STREAM_WHEN_PLAIN_BOUND_ABOVE = 10.0
# Why a stream was cut when the caller's own timeout, not the watchdog, ended it.
_CALLERS_TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Abandoned:
    """The caller left mid-stream; ``tokens`` is what the call is settled with."""

    tokens: int


def _retryable(error: APIConnectionError | APIResponseValidationError) -> Exception:
    return carry(Verdict(error, True, None, None, False))


class _Attempt:
    """The reading task of one attempt and the timer that watches it."""

    __slots__ = (
        "_clock",
        "_cuts",
        "_job",
        "_state",
        "_ticket",
        "_timeout",
        "_timer",
        "_watch",
        "assembler",
        "completed",
        "cut",
        "first_at",
        "last_at",
        "longest_gap",
        "started",
        "task",
    )

    def __init__(
        self, clock: Clock, job: Job, state: StreamState, watch: StreamWatch, cuts: int
    ) -> None:
        self._clock = clock
        self._job = job
        self._state = state
        self._watch = watch
        self._cuts = cuts
        self._timeout: float | None = None
        self._timer: TimerHandle | None = None
        self.assembler = StreamAssembler(job.endpoint)
        self.started = clock.now()
        self._ticket = watch.waiting(self.started)
        self.first_at: float | None = None
        self.last_at = self.started
        self.longest_gap = 0.0
        self.cut: str | None = None  # why the watchdog cut the stream
        self.completed = False  # read to its end: all its gaps are known
        self.task: asyncio.Task[TransportResponse] | None = None

    def watch_first_byte(self, timeout: float | None) -> None:
        """Start watching for the first byte (``timeout``: the caller's, bounds it too)."""
        self._timeout = timeout
        self._check()

    def _limit(self) -> tuple[float, float, str]:
        """(silent since, bound, why) for the silence the attempt is in now."""
        watch = self._watch
        if self.first_at is None:
            limit = watch.first_byte_limit(
                cut_before=self._cuts,
                started=self.started,
                now=self._clock.now(),
                ticket=self._ticket,
            )
            if self._timeout is not None:
                limit = min(limit, self._timeout)
            return self.started, limit, f"no first byte within {limit:g}s"
        limit = watch.gap_limit(cut_before=self._cuts, ticket=self._ticket, now=self._clock.now())
        return self.last_at, limit, f"no chunk for {limit:g}s"

    def _check(self) -> None:
        """Cut the stream if its silence passed the bound; else wake again later."""
        self._timer = None
        since, limit, why = self._limit()
        silent = self._clock.now() - since
        self._tell_if_slow_again(silent)
        # A timer set for since + limit may wake a hair early in float arithmetic.
        if silent >= limit - 1e-9:
            self._fire(why)
            return
        now = self._clock.now()
        step = self._watch.next_check(silent, limit)
        if since + step <= now:
            # Float rounding: ``now - since`` fell a hair short of the step while
            # ``since + step`` is now. Re-armed at now, the timer would wake at once with the
            # same silence, again and again: a livelock on a clock that does not move by
            # itself (FakeClock), a spin on the loop's. Wake at the next step instead.
            if step >= limit:
                self._fire(why)
                return
            step = self._watch.next_check(step, limit)
        self._timer = self._clock.call_at(since + step, self._check)

    def _tell_if_slow_again(self, silent: float) -> None:
        """A job cut for silence is silent again past its model's learned bound: tell now.

        Told only when the attempt ended, a retry that hangs again (sheltered by a wave for
        minutes) would hold the storm's confirmation back as long.
        """
        if self._state.last_cut is None:
            return
        watch = self._watch
        learned = watch.first_byte_limit() if self.first_at is None else watch.gap_limit()
        if silent > learned:
            self.tell_cut(False)

    def tell_cut(self, prompt: bool) -> None:
        """Tell, once, what the job's last cut was: a hang's if this attempt was ``prompt``
        (its place in a wave is then given up), a slow job's if not."""
        cut = self._state.last_cut
        if cut is None:
            return
        self._state.last_cut = None
        if prompt:
            self._watch.forgive(cut[0], cut[1])
        self._watch.cut_told(prompt=prompt)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A stream its caller left says nothing of what its silence would have become.
        now = None if self._state.abandoned else self._clock.now()
        # A cut stream keeps a place in a wave until its job tells, on its next attempt, what
        # the silence was: not one delivered to its caller, which is not tried again.
        cut = self.cut not in (None, _CALLERS_TIMEOUT) and not self._state.delivered
        self._watch.gone(self._ticket, now, completed=self.completed, cut=cut)

    def _fire(self, why: str) -> None:
        if self.task is not None and not self.task.done():
            self.cut = why
            # A cut whose job will try again tells, on that attempt, what the silence was;
            # a stream already delivered to its caller is not retried (nothing to await).
            if why != _CALLERS_TIMEOUT and not self._state.delivered:
                self._watch.cut_made(self._clock.now())
            self.task.cancel()

    def heard(self) -> None:
        """A chunk arrived: note the silence it ended and re-arm for the next one."""
        now = self._clock.now()
        if self.first_at is None:
            self.first_at = now
        else:
            self.longest_gap = max(self.longest_gap, now - self.last_at)
        self.last_at = now
        self._watch.spoke(self._ticket, now)
        if self._timer is not None:
            self._timer.cancel()
        limit = self._watch.gap_limit(cut_before=self._cuts)
        self._timer = self._clock.call_at(now + self._watch.next_check(0.0, limit), self._check)

    async def read(self, transport: StreamingTransport, body: bytes) -> TransportResponse:
        stream = await transport.open_stream(
            self._job.endpoint.value, body, timeout=_CONNECT_TIMEOUT
        )
        try:
            if not 200 <= stream.status < 300:
                # The server spoke (a refusal, not a silence): no silent peer, no silence.
                self._watch.refused(self._ticket, self._clock.now())
                return TransportResponse(stream.status, await stream.read(), stream.headers)
            return await self._read_events(stream)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _read_events(self, stream: StreamBody) -> TransportResponse:
        decoder = SseDecoder()
        async for data in stream.chunks():
            self.heard()
            for payload in decoder.feed(data):
                error = self._frame(payload)
                if error is not None:
                    return TransportResponse(error.status, error.body, stream.headers)
        for payload in decoder.flush():
            error = self._frame(payload)
            if error is not None:
                return TransportResponse(error.status, error.body, stream.headers)
        if not self.assembler.complete:
            raise _retryable(APIConnectionError("the stream ended before [DONE] or its usage"))
        body = json.dumps(self.assembler.body(), separators=(",", ":")).encode()
        self.completed = True
        return TransportResponse(200, body, stream.headers)

    def _frame(self, payload: str) -> ErrorFrame | None:
        try:
            found = self.assembler.read(payload)
        except ValueError as exc:
            raise _retryable(
                APIResponseValidationError(f"the stream sent an unusable frame: {exc}")
            ) from None
        if isinstance(found, ErrorFrame):
            return found
        if self.first_at is not None and self._watch.heard_first(
            self._ticket, self.started, self.first_at
        ):
            # An answer, not an error frame: what this model's time to first byte is; and a
            # job cut silent before that now answers promptly was hung, not slow.
            cut = self._state.last_cut
            if cut is not None and cut[2]:
                self.tell_cut(self.first_at - self.started <= self._watch.first_byte_limit())
        self._state.pass_frame(payload)
        if isinstance(found, Delta):
            self._state.deliver(StreamChunk(found.text, found.reasoning))
        return None


def streams_on_wire(setting: bool | None, lane: Lane, job: Job) -> bool:
    """Whether a submitted job's next attempt streams on the wire (``setting``: the switch).

    True and False are the caller's choice; None decides by the model's non-streamed bound
    for this job as it stands (:data:`STREAM_WHEN_PLAIN_BOUND_ABOVE`). A job whose attempt
    was streamed stays streamed: its retries are read the same way.
    """
    if setting is not None:
        return setting
    bound = lane.timeouts.timeout_for(job.max_tokens)
    return bound > STREAM_WHEN_PLAIN_BOUND_ABOVE


class Streamer:
    """Streams jobs over a streaming transport, with a hang watchdog learned per model."""

    __slots__ = ("_clock", "_transport", "_watches")

    def __init__(self, *, clock: Clock, transport: StreamingTransport) -> None:
        self._clock = clock
        self._transport = transport
        self._watches: dict[str, StreamWatch] = {}

    def watch(self, model: str, lane: Lane | None = None) -> StreamWatch:
        """The silence bounds of ``model``, created on first use (sharing ``lane``'s evidence
        of what silences became with its plain calls)."""
        watch = self._watches.get(model)
        if watch is None:
            silences = None if lane is None else lane.timeouts.silences
            watch = self._watches[model] = StreamWatch(silences=silences)
        return watch

    async def call(
        self, job: Job, lane: Lane, body: bytes, timeout: float | None
    ) -> TransportResponse | Abandoned:
        """One attempt; raises like a transport for a cut, hung or broken stream."""
        state = job.stream
        assert state is not None
        watch = self.watch(job.model, lane)
        cuts = sum(record.error_type == APITimeoutError.__name__ for record in job.history)
        attempt = _Attempt(self._clock, job, state, watch, cuts)
        attempt.task = task = asyncio.create_task(attempt.read(self._transport, body))
        state.reader = task
        attempt.watch_first_byte(timeout)
        # A timeout the caller chose bounds the whole stream, as it bounds a submitted call.
        total = (
            self._clock.call_at(attempt.started + timeout, lambda: attempt._fire(_CALLERS_TIMEOUT))
            if timeout is not None
            else None
        )
        try:
            response = await task
        except asyncio.CancelledError:
            if state.abandoned and attempt.cut is None:
                return Abandoned(self._generated(job, lane, attempt))
            if attempt.cut is None:
                raise  # the worker itself was cancelled: the scheduler is closing
            self._tell(watch, attempt, None)
            if attempt.cut != _CALLERS_TIMEOUT:
                state.last_cut = (attempt._ticket, attempt.started, attempt.first_at is None)
            raise _retryable(APITimeoutError(f"Stream cut: {attempt.cut}.")) from None
        except BaseException:
            self._tell(watch, attempt, None)
            raise
        finally:
            attempt.disarm()
            if total is not None:
                total.cancel()
            state.reader = None
        if response.status == 200 and attempt.first_at is not None:
            watch.observe(-1.0, attempt.longest_gap)  # its first byte was taught on arrival
        self._tell(watch, attempt, response)
        return response

    @staticmethod
    def _tell(watch: StreamWatch, attempt: _Attempt, response: TransportResponse | None) -> None:
        """Whether this attempt of a job cut for silence before answered promptly (the cut
        was a hang's) or not (a slow job's), unless its first byte or a silence told already:
        whole, with no long silence."""
        attempt.tell_cut(
            response is not None
            and response.status == 200
            and attempt.completed
            and attempt.first_at is not None
            and attempt.first_at - attempt.started <= watch.first_byte_limit()
            and attempt.longest_gap <= watch.gap_limit()
        )

    @staticmethod
    def _generated(job: Job, lane: Lane, attempt: _Attempt) -> int:
        """Tokens to settle a stream the caller left: the server's count, else an estimate."""
        usage = attempt.assembler.usage
        total = usage.get("total_tokens") if usage is not None else None
        if isinstance(total, int) and total > 0:
            return total
        estimator = lane.estimator
        prompt = max(0, job.estimated_tokens - estimator.completion_allowance(job.max_tokens))
        answer = math.ceil(len(attempt.assembler.text) / estimator.chars_per_token)
        return min(job.estimated_tokens, prompt + answer)

    def __repr__(self) -> str:
        return f"Streamer(models={list(self._watches)})"
