"""The Scheduler: submit -> queue -> worker -> limiter -> transport -> result or retry.

A fixed pool of ``max_concurrency`` workers takes turns at one gate. The worker at the gate looks
at the most urgent eligible job and asks the limiter for its credit; if the limiter says "wait",
the worker sleeps until that moment or until something changes (a more urgent job arrives, credit
is refunded, limits change), never polling. So the queue order is the order credit is granted,
and a worker holds no job while it waits. A failed job goes back into the queue with a
not-before time; the worker moves on to other work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import random
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any

from .._clock import Clock, LoopClock, TimerHandle
from .._errors import (
    DeadlineExceededError,
    InvalidJobError,
    SchedulerClosedError,
    SchedulerError,
)
from .._guards._breaker import BreakerPolicy, CircuitBreaker
from .._guards._budget import Budget
from .._guards._estimate import TokenEstimator, prompt_characters
from .._guards._timeouts import CallTimeouts
from .._limits._adaptive import AdaptivePolicy, RateController
from .._limits._local import Limiter, LocalLimiter
from .._models import Endpoint, Priority, Result
from .._observe._alerts import Alert, AlertMonitor, AlertPolicy
from .._observe._events import events as _log
from .._observe._stats import SchedulerStatistics, StatsRecorder, queue_levels
from .._transports._base import AiohttpTransport, Transport
from ._job import Job
from ._map import OutcomeStream, PromptItem, map_prompts
from ._outcome import OutcomeHandler
from ._queue import JobQueue
from ._retry import RetryPolicy
from ._settings import check_fits, job_arguments, scheduler_settings

__all__ = ["DEFAULT_BASE_URL", "Scheduler"]

DEFAULT_BASE_URL = "https://api.x.ai/v1"
# Until the first answer, at most this long with a single call in flight.
_FIRST_CONTACT = 2.0
# The shortest sleep at the gate: below it, float time might not advance at all.
_MIN_WAIT = 1e-6
# After an unexpected error at the gate (a custom limiter failing), wait this long, then retry.
_GATE_ERROR_PAUSE = 0.1


class Scheduler:
    """Schedules prompts to the xAI API within its rate limits; use as an async context manager.

    Priorities: a LOWER number is MORE urgent (``Priority.CRITICAL`` = 0 ... ``Priority.LOW`` = 3,
    any int allowed). A job that has waited ``aging_seconds`` counts as one level more urgent, so
    low-priority work is never starved forever (``aging_seconds=None`` turns aging off).

    Capacity for urgent work: credit is always granted in priority order, and while CRITICAL or
    HIGH jobs keep arriving (one in the last ``urgent_window`` seconds), ``urgent_share`` of the
    workers is kept free of NORMAL/LOW calls, so an urgent job never waits for a slow call to
    finish. With no urgent work about, LOW gets everything.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        model: str = "grok-4",
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int = 32,
        retry: RetryPolicy | None = None,
        adaptive: AdaptivePolicy | None = None,
        breaker: BreakerPolicy | None = None,
        alerts: AlertPolicy | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        token_budget: int | None = None,
        cost_budget_usd: float | None = None,
        endpoint: Endpoint | str = Endpoint.CHAT_COMPLETIONS,
        timeout: float | None = None,
        burst_seconds: float = 1.0,
        aging_seconds: float | None = 60.0,
        default_max_tokens: int | None = None,
        stop_on_fatal: bool = True,
        urgent_share: float = 0.1,
        log_jobs: bool = False,
        urgent_window: float = 60.0,
        limiter: Limiter | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        settings = scheduler_settings(
            model=model,
            endpoint=endpoint,
            base_url=base_url,
            max_concurrency=max_concurrency,
            requests_per_second=requests_per_second,
            tokens_per_minute=tokens_per_minute,
            timeout=timeout,
            burst_seconds=burst_seconds,
            aging_seconds=aging_seconds,
            default_max_tokens=default_max_tokens,
            stop_on_fatal=stop_on_fatal,
            urgent_share=urgent_share,
            urgent_window=urgent_window,
            log_jobs=log_jobs,
        )
        self._settings = settings
        self._model = model
        self._max_concurrency = max_concurrency
        self._adaptive = adaptive or AdaptivePolicy()
        self._breaker = CircuitBreaker(breaker)
        self._breaker.on_transition(lambda _old, _new: self._poke())
        self._alerts = AlertMonitor(alerts, on_alert=on_alert)
        self._budget = (
            Budget(max_tokens=token_budget, max_cost_usd=cost_budget_usd)
            if token_budget is not None or cost_budget_usd is not None
            else None
        )
        self._controller: RateController | None = None
        self._timeout = timeout
        self._clock: Clock = clock or LoopClock()
        self._queue = JobQueue(aging_seconds=aging_seconds, urgent_at_most=Priority.HIGH)
        self._limiter: Limiter | None = limiter
        if transport is None:
            key = api_key if api_key is not None else os.environ.get("XAI_API_KEY")
            if not key:
                raise ValueError("no API key: pass api_key= or set XAI_API_KEY")
            transport = AiohttpTransport(
                base_url=base_url, api_key=key, max_connections=max_concurrency
            )
        self._transport = transport
        self._estimators: dict[str, TokenEstimator] = {}
        self._timeouts = CallTimeouts()
        self._stats = StatsRecorder()
        self._outcome = OutcomeHandler(
            queue=self._queue,
            retry=retry or RetryPolicy(),
            rng=rng or random.Random(),
            breaker=self._breaker,
            alerts=self._alerts,
            budget=self._budget,
            estimators=self._estimators,
            timeouts=self._timeouts,
            stats=self._stats,
            stop_on_fatal=stop_on_fatal,
            log_jobs=log_jobs,
            poke=self._poke,
        )
        self._workers: list[asyncio.Task[None]] = []
        self._gate = asyncio.Lock()
        self._wakeup: asyncio.Future[None] | None = None
        self._in_flight = 0
        self._closing = False
        self._closed = False
        self._started = False
        self._first_call_at: float | None = None
        self._urgent_slots = settings.urgent_slots
        self._urgent_window = urgent_window
        # Per-job events cost on every job and would flood a configured log: opt-in.
        self._log_jobs = log_jobs
        self._last_urgent_at = -math.inf
        self._waiting_for_slot = False
        self._heard_back = False

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Leaving the block by an exception (including cancellation) must not wait for a drain.
        await self.aclose(cancel=exc_info[0] is not None)

    async def start(self) -> None:
        """Start the workers (``async with`` does this for you)."""
        if self._started:
            return
        if self._closed:
            raise SchedulerClosedError("the scheduler is closed")
        self._started = True
        now = self._clock.now()
        if self._limiter is None:
            self._limiter = LocalLimiter(
                requests_per_second=self._settings.requests_per_second,
                tokens_per_minute=self._settings.tokens_per_minute,
                burst_seconds=self._settings.burst_seconds,
                now=now,
            )
        self._outcome.limiter = self._limiter
        self._limiter.set_listener(self._poke)
        self._controller = self._outcome.controller = RateController(
            self._adaptive,
            self._limiter,
            requests_per_second=self._limiter.requests_per_second,
            tokens_per_minute=self._limiter.tokens_per_minute,
            now=now,
            measure_acceptance=isinstance(self._limiter, LocalLimiter),
        )
        self._workers = [
            asyncio.create_task(self._worker(), name=f"grok-scheduler-worker-{i}")
            for i in range(self._max_concurrency)
        ]

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop accepting jobs; finish queued ones (or, with ``cancel=True``, fail them)."""
        if self._closed:
            return
        self._closing = True
        if cancel:
            self._outcome.fail_queued(
                SchedulerClosedError("the scheduler was closed before this job ran")
            )
        self._poke()
        try:
            if self._workers:
                if cancel:
                    for worker in self._workers:
                        worker.cancel()
                await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            self._closed = True
            # Anything still unresolved (workers cancelled mid-call) fails rather than hangs.
            self._outcome.fail_queued(
                SchedulerClosedError("the scheduler was closed before this job ran")
            )
            try:
                if self._limiter is not None:
                    await self._limiter.aclose()
            finally:
                await self._transport.aclose()

    @property
    def model(self) -> str:
        """The default model of submitted jobs."""
        return self._model

    @property
    def max_concurrency(self) -> int:
        """How many calls may be in flight at once."""
        return self._max_concurrency

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` began."""
        return self._closing

    # -- submitting -------------------------------------------------------------------------
    def submit_nowait(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int = Priority.NORMAL,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        endpoint: Endpoint | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        metadata: Any = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> asyncio.Future[Result]:
        """Queue a job and return its future at once (no task per job: cheap for bulk).

        ``timeout`` bounds each call (default: derived from ``max_tokens`` and observed latency);
        ``deadline`` bounds the whole job, retries included, in seconds from now. Cancelling the
        future removes the job from the queue.
        """
        if self._closing:
            raise SchedulerClosedError("the scheduler is closed")
        if not self._started:
            raise SchedulerError("the scheduler is not started: use `async with Scheduler(...)`")
        if self._outcome.fatal is not None:
            raise self._outcome.copy_fatal()
        job = self._make_job(
            prompt,
            priority=priority,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            endpoint=endpoint,
            timeout=timeout,
            deadline=deadline,
            metadata=metadata,
            extra_body=extra_body,
        )
        if job.priority <= Priority.HIGH:
            self._last_urgent_at = job.submitted_at
        if self._budget is not None:
            # Raises BudgetExceededError before anything is queued or sent.
            self._budget.reserve(job.estimated_tokens)
            job.budget_held = True
        self._stats.submitted(job.priority)
        if self._log_jobs:
            _log.debug(
                "grok_scheduler.submitted",
                priority=job.priority,
                model=job.model,
                estimated_tokens=job.estimated_tokens,
                queued=len(self._queue) + 1,
            )
        # Wake the gate for a new head, or for an urgent job while it holds the reserved slots.
        if self._queue.push(job, job.submitted_at) or (
            self._waiting_for_slot and job.priority <= Priority.HIGH
        ):
            self._poke()
        job.future.add_done_callback(functools.partial(self._on_future_done, job))
        if job.deadline is not None:
            job.deadline_timer = self._clock.call_at(
                job.deadline, functools.partial(self._expire, job)
            )
        return job.future

    async def submit(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int = Priority.NORMAL,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        endpoint: Endpoint | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        metadata: Any = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Result:
        """Queue a job and wait for its :class:`Result` (or its typed error)."""
        future = self.submit_nowait(
            prompt,
            priority=priority,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            endpoint=endpoint,
            timeout=timeout,
            deadline=deadline,
            metadata=metadata,
            extra_body=extra_body,
        )
        # Cancelling this await cancels the future, which takes the job out of the queue.
        return await future

    def _make_job(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int,
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
        endpoint: Endpoint | str | None,
        timeout: float | None,
        deadline: float | None,
        metadata: Any,
        extra_body: Mapping[str, Any] | None,
    ) -> Job:
        args = job_arguments(
            self._settings,
            prompt,
            priority=priority,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            endpoint=endpoint,
            timeout=timeout,
            deadline=deadline,
            extra_body=extra_body,
        )
        characters, count = prompt_characters(args.messages)
        estimator = self._estimators.get(args.model)
        if estimator is None:
            estimator = self._estimators[args.model] = TokenEstimator()
        estimate = estimator.estimate(characters, count, args.max_tokens)
        # The ceiling, not the current adaptive rate: a job that fits the limit must not be
        # refused because a 429 lowered the pace for a while.
        check_fits(
            estimate,
            self._controller.tokens_ceiling
            if self._controller is not None
            else self._limiter.tokens_per_minute
            if self._limiter
            else None,
        )
        now = self._clock.now()
        return Job(
            prompt=args.messages,
            model=args.model,
            endpoint=args.endpoint,
            priority=args.priority,
            max_tokens=args.max_tokens,
            options=args.options,
            metadata=metadata,
            timeout=args.timeout,
            deadline=now + args.deadline if args.deadline is not None else None,
            estimated_tokens=estimate,
            characters=characters,
            key=self._queue.key_for(args.priority, now),
            now=now,
            future=asyncio.get_running_loop().create_future(),
        )

    def _on_future_done(self, job: Job, _future: object) -> None:
        if job.deadline_timer is not None:
            # A finished job must not stay alive in the loop's timers until its deadline.
            job.deadline_timer.cancel()
            job.deadline_timer = None
        if job.future.cancelled() and not job.cancelled:
            job.cancelled = True
            self._stats.cancelled()
            if job.queued:
                self._queue.discard(job)
                self._outcome.release_budget(job)
                self._poke()

    def _holding_for_urgent(self, now: float) -> bool:
        """True when non-urgent work must leave the reserved slots free."""
        return (
            self._urgent_slots > 0
            and now - self._last_urgent_at < self._urgent_window
            and self._in_flight >= self._max_concurrency - self._urgent_slots
        )

    def _expire(self, job: Job) -> None:
        """A queued job's deadline passed: fail it now rather than when it reaches the front."""
        if job.queued and not job.cancelled and not job.future.done():
            job.cancelled = True
            self._queue.discard(job)
            self._outcome.fail(job, DeadlineExceededError("the job's deadline passed in the queue"))
            self._poke()

    # -- the gate ---------------------------------------------------------------------------
    def _poke(self) -> None:
        """Wake the worker at the gate: something changed that may let a job go sooner."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _wait(self, until: float | None) -> None:
        wakeup: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wakeup = wakeup
        timer: TimerHandle | None = None
        if until is not None:
            timer = self._clock.call_at(until, self._poke)
        try:
            await wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _next_job(self) -> Job | None:
        """The next job to send with its credit reserved, or None when it is time to stop."""
        assert self._limiter is not None
        async with self._gate:
            while True:
                now = self._clock.now()
                job = self._queue.peek(now)
                if job is None:
                    if self._closing and len(self._queue) == 0:
                        self._poke()
                        return None
                    await self._wait(self._queue.next_eligible_at())
                    continue
                urgent_only = False
                if job.priority > Priority.HIGH and self._holding_for_urgent(now):
                    # The last slots are kept for urgent work while it keeps arriving. An urgent
                    # job behind an aged one may take them; otherwise the next call to finish,
                    # or a retry falling due, wakes the gate.
                    urgent = self._queue.peek(now, urgent_only=True)
                    if urgent is None:
                        self._waiting_for_slot = True
                        until = self._last_urgent_at + self._urgent_window
                        eligible = self._queue.next_eligible_at()
                        await self._wait(until if eligible is None else min(until, eligible))
                        self._waiting_for_slot = False
                        continue
                    job, urgent_only = urgent, True
                if self._first_call_at is not None and not self._heard_back:
                    # Until the server has answered once, one call at a time: a wrong key or
                    # an empty account then costs one request, not a whole pool of them, and
                    # stated limits arrive before the first burst. A slow first answer must
                    # not stall the run, so this lasts at most _FIRST_CONTACT seconds.
                    opens_at = self._first_call_at + _FIRST_CONTACT
                    if now < opens_at:
                        await self._wait(opens_at)
                        continue
                    self._heard_back = True
                if job.deadline is not None and now >= job.deadline:
                    self._queue.pop(now, urgent_only=urgent_only)
                    self._outcome.fail(job, DeadlineExceededError("the job's deadline passed"))
                    continue
                wait = await self._limiter.acquire(job.estimated_tokens, now, job.priority)
                if wait <= 0.0:
                    now = self._clock.now()
                    # Awaiting a shared limiter lets time pass: the job may have been cancelled,
                    # or a more urgent retry may have become due and now stand in front.
                    if job.cancelled or self._queue.peek(now, urgent_only=urgent_only) is not job:
                        self._limiter.refund(job.estimated_tokens, now)
                        continue
                    # Asked only when the job will really go: half-open hands out one probe.
                    blocked = self._breaker.delay(now)
                    if blocked > 0.0:
                        self._limiter.refund(job.estimated_tokens, now)
                        await self._wait(now + blocked)
                        continue
                    self._queue.pop(now, urgent_only=urgent_only)
                    self._alerts.record_queue_wait(now - job.submitted_at, now)
                    return job
                if self._controller is not None:
                    self._controller.on_limited(now)
                until = now + max(wait, _MIN_WAIT)
                eligible = self._queue.next_eligible_at()
                if eligible is not None:
                    until = min(until, eligible)
                await self._wait(until)

    async def _worker(self) -> None:
        while True:
            try:
                job = await self._next_job()
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

    # -- one attempt ------------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        assert self._limiter is not None
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
        self._in_flight += 1
        if self._first_call_at is None:
            self._first_call_at = started
        self._stats.dispatched()
        if self._log_jobs:
            _log.debug(
                "grok_scheduler.dispatched",
                priority=job.priority,
                attempt=job.attempts,
                queued_seconds=round(job.queued_seconds, 4),
                in_flight=self._in_flight,
            )
        timeout = job.timeout or self._timeout or self._timeouts.timeout_for(job.max_tokens)
        if job.deadline is not None:
            timeout = max(0.001, min(timeout, job.deadline - started))
        try:
            response = await self._transport.send(job.endpoint.value, body, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = clock.now()
            job.in_flight_seconds += now - started
            self._outcome.raised(job, exc, now)
            return
        finally:
            self._in_flight -= 1
            if not self._heard_back or self._waiting_for_slot:
                self._heard_back = True
                self._poke()
        now = clock.now()
        elapsed = now - started
        job.in_flight_seconds += elapsed
        self._outcome.answered(job, response, now, elapsed)

    # -- bulk -------------------------------------------------------------------------------
    def map(
        self,
        prompts: Iterable[PromptItem] | AsyncIterable[PromptItem],
        *,
        ordered: bool = False,
        window: int | None = None,
        **defaults: Any,
    ) -> OutcomeStream:
        """Run every prompt of a (possibly endless) iterable, yielding outcomes as they finish.

        Items are prompts, message lists, or mappings of submit options (``prompt`` or
        ``messages`` plus e.g. ``priority``, ``max_tokens``, ``metadata``). At most ``window``
        jobs are in the scheduler at once (default: a few times ``max_concurrency``), so memory
        stays flat whatever the input size. Failures are yielded as outcomes, never raised.
        """
        return map_prompts(self, prompts, ordered=ordered, window=window, **defaults)

    # -- introspection ----------------------------------------------------------------------
    def statistics(self) -> SchedulerStatistics:
        """A frozen snapshot of queue, limits, counters and token use."""
        now = self._clock.now()
        return self._stats.snapshot(
            queued=len(self._queue),
            in_flight=self._in_flight,
            limiter=self._limiter.state(now) if self._limiter else None,
            queue_by_priority=queue_levels(
                ((job.priority, job.submitted_at) for job in self._queue.jobs()), now
            ),
            breaker_state=self._breaker.state,
            active_alerts=self._alerts.active(),
            budget_used_fraction=self._budget.used_fraction if self._budget else None,
        )

    def __repr__(self) -> str:
        limiter = self._limiter
        return (
            f"Scheduler(model={self._model!r}, base_url={self._settings.base_url!r}, "
            f"max_concurrency={self._max_concurrency}, "
            f"requests_per_second={limiter.requests_per_second if limiter else None}, "
            f"tokens_per_minute={limiter.tokens_per_minute if limiter else None}, "
            f"queued={len(self._queue)}, in_flight={self._in_flight}, closed={self._closing})"
        )
