"""The Scheduler: its lifecycle, submit, map and statistics; the engine lives beside it.

submit -> :mod:`._settings` (checks) -> queue -> :mod:`._gate` (who goes next, with credit) ->
:mod:`._attempt` (a worker sends it) -> :mod:`._outcome` (result, retry or failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any

from .._clock import Clock, LoopClock
from .._errors import SchedulerClosedError, SchedulerError
from .._guards._breaker import BreakerPolicy, CircuitBreaker
from .._guards._budget import Budget
from .._limits._adaptive import AdaptivePolicy
from .._models import Endpoint, Priority, Result
from .._observe._alerts import Alert, AlertMonitor, AlertPolicy
from .._observe._stats import StatsRecorder
from .._observe._timeline import Timeline
from .._transports._aiohttp import AiohttpTransport
from .._transports._base import Transport, TransportResponse
from .._transports._streaming import StreamingTransport
from ._attempt import WorkerPool
from ._batch_method import BatchMethods
from ._controls import RunControls
from ._gate import GateState, Wakeup
from ._intake import enqueue, make_job
from ._job import Job
from ._lanes import Lanes, LimiterSource, PerModel
from ._map import OutcomeStream, PromptItem, map_prompts
from ._outcome import OutcomeHandler
from ._priority import priority_scope
from ._queue import JobQueue
from ._raw import last_response, raw_arguments, refuse_stream, sendable_as_is
from ._retry import RetryPolicy
from ._settings import job_arguments, scheduler_settings
from ._stream import ResultStream, StreamState

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CONCURRENCY_CAP", "Scheduler"]

DEFAULT_BASE_URL = "https://api.x.ai/v1"
# Calls in flight at most when max_concurrency is not given (the pool is sized to it).
DEFAULT_CONCURRENCY_CAP = 1024
_CLOSED_BEFORE_RUN = "the scheduler was closed before this job ran"


class Scheduler(BatchMethods, RunControls):
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
        requests_per_second: PerModel = None,
        tokens_per_minute: PerModel = None,
        max_concurrency: int | None = None,
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
        limiter: LimiterSource = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        concurrency_cap: int = DEFAULT_CONCURRENCY_CAP,
        stream_on_wire: bool | None = None,
    ) -> None:
        settings = scheduler_settings(
            model=model,
            endpoint=endpoint,
            base_url=base_url,
            max_concurrency=max_concurrency,
            concurrency_cap=concurrency_cap,
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
            stream_on_wire=stream_on_wire,
        )
        self._settings = settings
        self._adaptive = adaptive or AdaptivePolicy()
        self._clock: Clock = clock or LoopClock()
        self._wakeup = Wakeup(self._clock)
        # Calls in flight count as not failed yet (answers take seconds; failures come back fast).
        self._breaker = CircuitBreaker(breaker, in_flight=lambda: self._state.in_flight)
        self._breaker.on_transition(lambda _old, _new: self._wakeup.poke())
        self._alerts = AlertMonitor(alerts, on_alert=on_alert)
        self._budget = (
            Budget(max_tokens=token_budget, max_cost_usd=cost_budget_usd)
            if token_budget is not None or cost_budget_usd is not None
            else None
        )
        self._lanes = Lanes(
            default_model=settings.model,
            requests_per_second=settings.requests_per_second,
            tokens_per_minute=settings.tokens_per_minute,
            burst_seconds=settings.burst_seconds,
            adaptive=self._adaptive,
            limiter=limiter,
            max_concurrency=settings.max_concurrency,
            concurrency_cap=settings.concurrency_cap,
            make_queue=functools.partial(
                JobQueue, aging_seconds=aging_seconds, urgent_at_most=Priority.HIGH
            ),
            now=self._clock.now,
            listener=self._wakeup.poke,
        )
        if transport is None:
            key = api_key if api_key is not None else os.environ.get("XAI_API_KEY")
            if not key:
                raise ValueError("no API key: pass api_key= or set XAI_API_KEY")
            transport = AiohttpTransport(
                base_url=base_url, api_key=key, max_connections=settings.connections
            )
        self._transport = transport
        self._stats = StatsRecorder()
        self._timeline = Timeline(probe=self._lanes.probe)
        self._state = GateState()
        self._outcome = OutcomeHandler(
            lanes=self._lanes,
            retry=retry or RetryPolicy(),
            rng=rng or random.Random(),
            breaker=self._breaker,
            alerts=self._alerts,
            budget=self._budget,
            stats=self._stats,
            stop_on_fatal=stop_on_fatal,
            # Per-job events cost on every job and would flood a configured log: opt-in.
            log_jobs=log_jobs,
            poke=self._wakeup.poke,
            timeline=self._timeline,
        )
        self._pool: WorkerPool | None = None
        self._closed = False
        self._started = False

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
        self._timeline.begin(self._clock.now(), time.time())
        # The default model's lane exists from the start: statistics and a given limiter.
        _ = self._lanes.default
        self._pool = WorkerPool(
            lanes=self._lanes,
            breaker=self._breaker,
            alerts=self._alerts,
            clock=self._clock,
            state=self._state,
            wakeup=self._wakeup,
            transport=self._transport,
            outcome=self._outcome,
            stats=self._stats,
            settings=self._settings,
            timeline=self._timeline,
        )
        self._pool.start()

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop accepting jobs; finish queued ones (or, with ``cancel=True``, fail them)."""
        if self._closed:
            return
        self._state.closing = True
        if cancel:
            self._outcome.fail_queued(SchedulerClosedError(_CLOSED_BEFORE_RUN))
        self._wakeup.poke()
        try:
            if self._pool is not None:
                await self._pool.join(cancel=cancel)
        finally:
            self._closed = True
            # Anything still unresolved (workers cancelled mid-call) fails rather than hangs.
            self._outcome.fail_queued(SchedulerClosedError(_CLOSED_BEFORE_RUN))
            try:
                for lane in list(self._lanes):
                    await lane.limiter.aclose()
            finally:
                await self._transport.aclose()

    @property
    def model(self) -> str:
        """The default model of submitted jobs."""
        return self._settings.model

    @property
    def max_concurrency(self) -> int:
        """The most calls that may ever be in flight at once (the cap when sized automatically)."""
        return self._settings.connections

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` began."""
        return self._state.closing

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
        return self._submit(
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
            stream=None,
        )

    def stream(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int = Priority.NORMAL,
        **options: Any,
    ) -> ResultStream:
        """Queue a job whose answer is streamed: ``async with scheduler.stream(p) as s``.

        Takes :meth:`submit`'s options, with the same queue, credit and priority. Iterate for
        :class:`StreamChunk` deltas; afterwards ``s.result`` is the :class:`Result`. Failures
        before the first chunk are retried as for ``submit``; after it, the typed error is raised
        with ``partial_text``. A stream silent beyond its model's learned bounds is cut and
        retried; ``timeout`` (when given) bounds each attempt's whole stream.
        """
        if not isinstance(self._transport, StreamingTransport):
            raise SchedulerError(f"{type(self._transport).__name__} cannot stream")
        state = StreamState()
        return ResultStream(state, self._submit(prompt, priority=priority, stream=state, **options))

    def _submit(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int,
        stream: StreamState | None,
        metadata: Any = None,
        **options: Any,
    ) -> asyncio.Future[Result]:
        self._check_open()
        args = job_arguments(self._settings, prompt, priority=priority, **options)
        return self._enqueue(
            make_job(self._lanes, args, metadata, now=self._clock.now(), stream=stream)
        )

    def _enqueue(self, job: Job) -> asyncio.Future[Result]:
        return enqueue(
            job,
            lanes=self._lanes,
            state=self._state,
            budget=self._budget,
            stats=self._stats,
            outcome=self._outcome,
            clock=self._clock,
            wake=self._wakeup.poke,
            log_jobs=self._settings.log_jobs,
        )

    def _check_open(self) -> None:
        if self._state.closing:
            raise SchedulerClosedError("the scheduler is closed")
        if not self._started:
            raise SchedulerError("the scheduler is not started: use `async with Scheduler(...)`")
        if self._outcome.fatal is not None:
            raise self._outcome.copy_fatal()

    async def send_raw(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        priority: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        encoded: bytes | None = None,
    ) -> TransportResponse:
        """Schedule a body as an SDK built it (sent unchanged); return the last response.

        See :mod:`grok_scheduler._core._raw`. ``priority`` defaults to the enclosing
        :meth:`priority` block's, else NORMAL. ``encoded``: ``body``'s JSON as the client sent
        it, sent as it is (``body`` is still what scheduling reads).
        """
        self._check_open()
        refuse_stream(body)
        args = raw_arguments(
            self._settings, path, body, priority=priority, timeout=timeout, deadline=deadline
        )
        job = make_job(self._lanes, args, None, now=self._clock.now(), stream=None)
        job.raw_body = dict(body)
        job.raw_bytes = sendable_as_is(encoded)
        return await last_response(job, self._enqueue(job))

    def priority(self, priority: int) -> contextlib.AbstractContextManager[None]:
        """``with scheduler.priority(Priority.HIGH):`` sets the priority of raw calls in it."""
        return priority_scope(priority)

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

    def __repr__(self) -> str:
        lane = self._lanes.existing(self._settings.model)
        limiter = lane.limiter if lane is not None else None
        return (
            f"Scheduler(model={self._settings.model!r}, base_url={self._settings.base_url!r}, "
            f"max_concurrency={self._settings.max_concurrency}, "
            f"requests_per_second={limiter.requests_per_second if limiter else None}, "
            f"tokens_per_minute={limiter.tokens_per_minute if limiter else None}, "
            f"queued={self._lanes.queued()}, in_flight={self._state.in_flight}, "
            f"closed={self._state.closing})"
        )
