"""How a job ends: after each call succeed, retry or fail; the 429 pause; the fatal stop.

Everything that happens once the transport has answered (or raised) is decided here, the way
openai-python keeps the whole retry decision in one request loop: the verdict, the Retry-After
cap, the backoff, the attempt/deadline/total-timeout bounds, and the requeue with a not-before
time. A failure that would fail every job (bad key, no credits, an address that never answered)
stops the whole run here too, and a queued job that is cancelled or runs out of time ends here
as well.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from .._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    AttemptRecord,
    DeadlineExceededError,
    ModelNotAvailableError,
    SchedulerError,
)
from .._guards._breaker import CircuitBreaker
from .._guards._budget import Budget
from .._models import Usage
from .._observe._alerts import AlertMonitor
from .._observe._events import events as _log
from .._observe._stats import StatsRecorder, attempt_outcome
from .._observe._timeline import Timeline
from .._transports._base import TransportResponse
from .._wire._classify import Verdict, classify_exception, classify_response
from ._job import Job
from ._lanes import Lane, Lanes, lane_refusal
from ._results import RAW_ANSWERED, make_result, not_sent_copy, read_answer
from ._retry import (
    RetryPolicy,
    Unreachable,
    backoff_delay,
    retry_after_delay,
    said_now_again,
    too_long_wait,
)
from ._settings import MAX_TOKENS_LIMIT

__all__ = ["OutcomeHandler"]

# When a 429 names no wait, the whole pool pauses this long (scaled by how often it repeats).
_CONGESTION_PAUSE = 0.25


class OutcomeHandler:
    """Settles each call's credit and decides the job's fate: result, requeue, or error.

    Credit, learning and requeueing go to the job's model lane; ``fatal`` is the error that
    stopped the run, once one did.
    """

    __slots__ = (
        "_alerts",
        "_breaker",
        "_budget",
        "_consecutive_429",
        "_lanes",
        "_log_jobs",
        "_poke",
        "_retry",
        "_rng",
        "_stats",
        "_stop_on_fatal",
        "_timeline",
        "_unreachable",
        "fatal",
    )

    def __init__(
        self,
        *,
        lanes: Lanes,
        retry: RetryPolicy,
        rng: random.Random,
        breaker: CircuitBreaker,
        alerts: AlertMonitor,
        budget: Budget | None,
        stats: StatsRecorder,
        stop_on_fatal: bool,
        log_jobs: bool,
        poke: Callable[[], None],
        timeline: Timeline | None = None,
    ) -> None:
        self._timeline = timeline if timeline is not None else Timeline()
        self._lanes = lanes
        self._retry = retry
        self._rng = rng
        self._breaker = breaker
        self._alerts = alerts
        self._budget = budget
        self._stats = stats
        self._stop_on_fatal = stop_on_fatal
        self._log_jobs = log_jobs
        # Wakes the gate: a requeued job or a drained queue may change who goes next.
        self._poke = poke
        self.fatal: APIError | None = None
        self._consecutive_429 = 0
        # A URL nothing listens on must stop the run within seconds, not retry for minutes.
        self._unreachable = Unreachable()

    def __repr__(self) -> str:
        return (
            f"OutcomeHandler(max_attempts={self._retry.max_attempts}, "
            f"stop_on_fatal={self._stop_on_fatal}, consecutive_429={self._consecutive_429}, "
            f"stopped={self.fatal is not None})"
        )

    # -- the call came back -----------------------------------------------------------------
    def raised(self, job: Job, exc: Exception, now: float, sent_at: float | None = None) -> None:
        """The transport raised (connection error, timeout): classify, then retry or fail."""
        verdict = classify_exception(exc)
        if job.send_record is not None:
            # The server may have taken it: for the limit it counts as accepted.
            self._lanes.get(job.model).controller.on_answered(
                job.send_record, job.estimated_tokens, job.estimated_tokens
            )
        if isinstance(verdict.error, APIConnectionError):
            self._breaker.record(False, now, sent_at=sent_at)
        self._alerts.record_call(False, now)
        if self._stop_on_fatal and self.fatal is None:
            _chain(verdict.error, exc)
            stop = self._unreachable.failed(verdict.error, retryable=verdict.retryable, now=now)
            if stop is not None:
                self.retry_or_fail(job, Verdict(stop, False, None, None, False), now)
                return
        # The server may have started on it: keep the reservation as spent.
        self.retry_or_fail(job, verdict, now, cause=exc)

    def answered(
        self,
        job: Job,
        response: TransportResponse,
        now: float,
        elapsed: float,
        sent_at: float | None = None,
    ) -> None:
        """The server answered: succeed, or settle the rejected call and retry-or-fail."""
        lane = self._lanes.get(job.model)
        self._unreachable.answered = True
        if 200 <= response.status < 300:
            self._succeed(lane, job, response, now, elapsed, sent_at)
            return
        # A rejected call generated nothing: its tokens go back, its request slot does not.
        lane.limiter.settle(job.estimated_tokens, 0, now)
        verdict = classify_response(
            response.status, response.headers, response.body, request_id=response.request_id
        )
        if not verdict.is_rate_limit and job.send_record is not None:
            lane.controller.on_answered(job.send_record, job.estimated_tokens, 0)
        self._breaker.record(response.status < 500, now, sent_at=sent_at)
        if verdict.is_rate_limit:
            self._alerts.record_rate_limited(now)
        else:
            self._alerts.record_call(False, now)
        self.retry_or_fail(job, verdict, now)

    def _succeed(
        self,
        lane: Lane,
        job: Job,
        response: TransportResponse,
        now: float,
        elapsed: float,
        sent_at: float | None = None,
    ) -> None:
        try:
            parsed, text, finish_reason = read_answer(response.body, job.endpoint)
        except ValueError as exc:
            lane.limiter.settle(job.estimated_tokens, job.estimated_tokens, now)
            self._breaker.record(True, now, sent_at=sent_at)
            self._alerts.record_call(False, now)
            error = APIResponseValidationError(
                f"the server answered {response.status} with an unusable body: {exc}",
                status_code=response.status,
                request_id=response.request_id,
            )
            # A raw call's SDK reads the 200 as it came and raises on it; bought again, the
            # same request could be billed up to max_attempts times.
            self.retry_or_fail(job, Verdict(error, job.raw_body is None, None, None, False), now)
            return
        usage = Usage.from_body(parsed)
        # A usage figure beyond any model's reach is a server bug, not tokens to account.
        used = min(usage.total_tokens or job.estimated_tokens, MAX_TOKENS_LIMIT)
        lane.limiter.settle(job.estimated_tokens, used, now)
        if job.send_record is not None:
            lane.controller.on_answered(job.send_record, job.estimated_tokens, used)
        self._breaker.record(True, now, sent_at=sent_at)
        self._alerts.record_call(True, now)
        if self._budget is not None:
            reserved = job.estimated_tokens if job.budget_held else 0
            job.budget_held = False
            self._budget.settle(reserved, used, usage.cost_in_usd_ticks)
            self._alerts.record_budget(self._budget.used_fraction, now)
        answer_tokens = min(usage.completion_tokens + usage.reasoning_tokens, MAX_TOKENS_LIMIT)
        lane.estimator.observe(job.characters, usage.prompt_tokens, answer_tokens)
        lane.timeouts.observe(elapsed, answer_tokens)
        lane.concurrency.observe(elapsed)
        self._consecutive_429 = 0
        self._stats.completed(usage, job.queued_seconds, elapsed)
        self._timeline.accepted(job.model, now, used, elapsed)
        if self._log_jobs:
            _log.debug(
                "grok_scheduler.completed",
                priority=job.priority,
                attempts=job.attempts,
                total_tokens=usage.total_tokens,
                call_seconds=round(elapsed, 4),
                request_id=response.request_id,
            )
        if job.future.done():
            return
        if job.raw_body is not None:
            job.future.set_result(RAW_ANSWERED)
            return
        job.future.set_result(make_result(job, response, parsed, usage, text, finish_reason))

    def abandoned(self, job: Job, used: int, now: float) -> None:
        """The caller left a stream mid-way: settle what was generated; the job is over."""
        lane, used = self._lanes.get(job.model), min(used, MAX_TOKENS_LIMIT)
        lane.limiter.settle(job.estimated_tokens, used, now)
        if job.send_record is not None:
            lane.controller.on_answered(job.send_record, job.estimated_tokens, used)
        if self._budget is not None:
            held, job.budget_held = job.budget_held, False
            self._budget.settle(job.estimated_tokens if held else 0, used, None)

    # -- retry or fail ----------------------------------------------------------------------
    def retry_or_fail(
        self, job: Job, verdict: Verdict, now: float, *, cause: BaseException | None = None
    ) -> None:
        """The whole retry decision: requeue the job with a not-before time, or fail it."""
        error = verdict.error
        _chain(error, cause)
        self._stats.failed_attempt(verdict)
        self._timeline.failed_attempt(job.model, now, verdict)
        said = verdict.retry_after
        if said is not None and said <= 0.0 and said_now_again(job.history):
            # As if the server named no wait: backoff for the job, a congestion pause for the
            # pool, never a tight loop.
            verdict = dataclasses.replace(verdict, retry_after=None)
        if verdict.is_rate_limit:
            self._pause_for_rate_limit(job, verdict, now)
        delay: float | None = None
        if verdict.retryable:
            if verdict.retry_after is not None:
                if verdict.retry_after > self._retry.max_retry_after:
                    delay = None
                    error = too_long_wait(error, verdict.retry_after)
                else:
                    delay = retry_after_delay(verdict.retry_after, self._rng)
            else:
                delay = backoff_delay(self._retry, job.attempts, self._rng)
        job.history.append(
            AttemptRecord(
                number=job.attempts,
                status_code=error.status_code,
                error_type=type(error).__name__,
                message=error.message,
                retry_after=said,
                backoff=delay,
            )
        )
        if error.fails_every_job and self._stop_on_fatal:
            if self.fatal is None:
                self._stop_everything(error, job)
            else:
                # Its own call got a fatal answer too: it keeps its status and request id.
                self.fail(job, error)
            return
        if isinstance(error, ModelNotAvailableError):
            self._close_lane(job, error)
            return
        if self.fatal is not None:
            # The run was stopped while this job was on the wire: it must not go again.
            self.fail(job, self.copy_fatal(job))
            return
        # After a streamed chunk reached the caller a retry would repeat text: they decide.
        spent = job.attempts >= self._retry.max_attempts or bool(
            job.stream and job.stream.delivered
        )
        if delay is None or job.future.done() or spent:
            self.fail(job, error)
            return
        retry_at = now + delay
        total = self._retry.total_timeout
        if (job.deadline is not None and retry_at >= job.deadline) or (
            total is not None and retry_at - job.submitted_at > total
        ):
            self.fail(job, error)
            return
        job.eligible_at = retry_at
        self._stats.retried()
        label = attempt_outcome(error, is_rate_limit=verdict.is_rate_limit)
        self._timeline.retried(job.model, now, label)
        # Queue first: nothing after this point may lose the job, not even a broken log sink.
        self._lanes.get(job.model).queue.push(job, now)
        self._poke()
        _log.info(
            "grok_scheduler.retry_scheduled",
            attempt=job.attempts,
            delay=round(delay, 3),
            error_type=type(error).__name__,
            status_code=error.status_code,
        )

    def _pause_for_rate_limit(self, job: Job, verdict: Verdict, now: float) -> None:
        lane = self._lanes.get(job.model)
        self._consecutive_429 += 1
        lane.concurrency.on_rate_limited(now)
        if verdict.stated is not None:
            lane.apply_stated(verdict.stated, now)
        pause = lane.controller.on_rate_limited(
            verdict.limit_dimension, now, record=job.send_record, reserved=job.estimated_tokens
        )
        if verdict.retry_after is not None and verdict.retry_after <= self._retry.max_retry_after:
            wait = verdict.retry_after
        else:
            # No server wait given (xAI's usual 429), or one beyond max_retry_after: that fails
            # the job that got it, but must not hold every other job for a day.
            # A short pool-wide pause, from the rate controller or, with adaptation off,
            # growing while 429s repeat; jittered so that processes do not resume together.
            if pause <= 0.0:
                pause = _CONGESTION_PAUSE * min(2 ** (self._consecutive_429 - 1), 16)
            wait = pause * self._rng.uniform(0.75, 1.25)
        lane.limiter.pause_until(now + wait, now, "429")

    def fail(self, job: Job, error: SchedulerError) -> None:
        """End a job with ``error`` (its history attached), releasing what it held."""
        self.release_budget(job)
        if job.future.done():
            # Cancelled while its call was in flight: it counts as cancelled, not also failed.
            return
        if isinstance(error, APIError):
            error.attempts = job.attempts
            error.history = tuple(job.history)
        self._stats.failed(error)
        job.future.set_exception(error)
        # A failure nobody awaits (fire-and-forget submit_nowait) must not warn at shutdown.
        job.future.exception()
        _log.warning(
            "grok_scheduler.failed",
            error_type=type(error).__name__,
            status_code=getattr(error, "status_code", None),
            attempts=job.attempts,
        )

    # -- ended in the queue -----------------------------------------------------------------
    def future_done(self, job: Job, _future: object) -> None:
        """A job's future resolved: drop its deadline timer; if cancelled, take it out."""
        if job.deadline_timer is not None:
            # A finished job must not stay alive in the loop's timers until its deadline.
            job.deadline_timer.cancel()
            job.deadline_timer = None
        if job.future.cancelled() and not job.cancelled:
            job.cancelled = True
            self._stats.cancelled()
            if job.queued:
                self._lanes.get(job.model).queue.discard(job)
                self.release_budget(job)
                self._poke()

    def expire(self, job: Job) -> None:
        """A queued job's deadline passed: fail it now rather than when it reaches the front."""
        if job.queued and not job.cancelled and not job.future.done():
            job.cancelled = True
            self._lanes.get(job.model).queue.discard(job)
            self.fail(job, DeadlineExceededError("the job's deadline passed in the queue"))
            self._poke()

    def release_budget(self, job: Job) -> None:
        """Give back a job's unspent budget reservation, once."""
        if self._budget is not None and job.budget_held:
            job.budget_held = False
            self._budget.release(job.estimated_tokens)

    # -- the fatal stop ---------------------------------------------------------------------
    def _stop_everything(self, error: APIError, job: Job) -> None:
        """A failure that will fail every job (bad key, no credits) ends the whole run."""
        self.fatal = error
        _log.error(
            "grok_scheduler.stopped",
            error_type=type(error).__name__,
            status_code=error.status_code,
            reason="this error would fail every job",
        )
        self.fail(job, error)
        self.fail_queued(None)

    def copy_fatal(self, job: Job | None = None) -> APIError:
        """A fresh error for a job refused because the run was stopped (``job`` None: a submit).

        The fatal error's type (``except`` clauses still work) and, as its ``__cause__``, the
        fatal error itself; not its status or request id, which belong to the call that got it.
        """
        assert self.fatal is not None
        return not_sent_copy(self.fatal, job)

    def fail_queued(self, error: SchedulerError | None) -> None:
        """Fail every queued job with ``error`` (None: a copy of the fatal error)."""
        for lane in self._lanes:
            for job in lane.queue.drain():
                self.fail(job, error if error is not None else self.copy_fatal(job))
        self._poke()

    def _close_lane(self, job: Job, error: ModelNotAvailableError) -> None:
        """The team may not use this model: fail its queued jobs too, and its later ones."""
        lane = self._lanes.get(job.model)
        lane.unavailable = error
        self.fail(job, error)
        for queued in lane.queue.drain():
            self.fail(queued, lane_refusal(error))
        self._poke()


def _chain(error: APIError, cause: BaseException | None) -> None:
    # The transport raises our own errors (already chained to what it saw, never to a response
    # error carrying the request's Authorization header); classification may hand back that
    # very object, which must not become its own cause.
    if cause is not None and cause is not error:
        error.__cause__ = cause


