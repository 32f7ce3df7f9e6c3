"""Counters the scheduler keeps, and the frozen snapshot :meth:`Scheduler.statistics` returns.

The recorder sits on the hot path, so each event costs a few integer increments, a deque append
and (per completed call) two bisections into fixed histogram buckets. Everything derived
(percentiles, per-outcome totals) is computed only when a snapshot is taken.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
)
from .._limits._local import LimiterState
from .._models import USD_TICKS_PER_USD, Usage

if TYPE_CHECKING:
    from .._wire._classify import Verdict
    from ._timeline import TimelineSnapshot

__all__ = [
    "CALL_TIME_BUCKETS",
    "QUEUE_WAIT_BUCKETS",
    "Histogram",
    "LatencySummary",
    "QueueLevel",
    "SchedulerStatistics",
    "StatsRecorder",
    "attempt_outcome",
    "queue_levels",
]

_LATENCY_SAMPLES = 2048

#: Upper bounds (seconds) of the queue-wait histogram: from instant to half an hour.
QUEUE_WAIT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
)
#: Upper bounds (seconds) of the call-time histogram: LLM calls take from 0.1 s to minutes.
CALL_TIME_BUCKETS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles (seconds) over the most recent calls."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, samples: Iterable[float]) -> LatencySummary:
        """Summarise ``samples`` (empty: all None)."""
        ordered = sorted(samples)
        if not ordered:
            return cls(None, None, None, None)
        last = len(ordered) - 1

        def at(q: float) -> float:
            return ordered[round(q * last)]

        return cls(at(0.5), at(0.9), at(0.99), ordered[-1])


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per fixed bucket since the start (for Prometheus histograms).

    ``counts[i]`` counts observations in ``(bounds[i-1], bounds[i]]``; the last entry (one more
    than ``bounds``) counts those above every bound.
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> Histogram:
        """No observations yet."""
        return cls(bounds, (0,) * (len(bounds) + 1), 0.0, 0)

    def cumulative(self) -> tuple[int, ...]:
        """Observations at or below each bound, then the total (the ``+Inf`` bucket)."""
        running = 0
        totals = []
        for count in self.counts:
            running += count
            totals.append(running)
        return tuple(totals)


@dataclass(frozen=True, slots=True)
class QueueLevel:
    """Jobs waiting at one priority level."""

    depth: int
    oldest_wait: float
    """Seconds the longest-waiting job of this level has waited."""


@dataclass(frozen=True, slots=True)
class ModelStatistics:
    """One model's lane: its limits as learned or stated, and its calls."""

    model: str
    limiter: LimiterState
    in_flight: int
    concurrency_limit: int
    """Calls of this model allowed in flight now (Little's law, or ``max_concurrency``)."""
    queued: int
    slow_latency: float
    """The 90th percentile of this model's recent call times (0.0 before any answer)."""


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """What the scheduler has done so far and where it stands now."""

    submitted: int
    completed: int
    failed: int
    cancelled: int
    retries: int
    dispatched: int
    rate_limited: int
    rate_limited_requests: int
    rate_limited_tokens: int
    queued: int
    in_flight: int
    failures_by_type: dict[str, int]
    """Jobs that failed for good, by error class name."""
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_in_usd_ticks: int
    queue_wait: LatencySummary
    call_time: LatencySummary
    limiter: LimiterState | None = field(default=None)
    queue_by_priority: dict[int, QueueLevel] = field(default_factory=dict)
    """Depth and oldest wait per priority level (only levels with queued jobs)."""
    oldest_wait: float = 0.0
    """Seconds the longest-waiting queued job has waited (0.0 for an empty queue)."""
    attempt_failures_by_type: dict[str, int] = field(default_factory=dict)
    """Failed attempts (retried or not), by error class name."""
    requests_by_outcome: dict[str, int] = field(default_factory=dict)
    """Answered or failed calls by outcome: ``success`` and the names :func:`attempt_outcome`
    gives (``rate_limited``, ``server_error``, ``timeout``, ...)."""
    queue_wait_histogram: Histogram = field(
        default_factory=lambda: Histogram.empty(QUEUE_WAIT_BUCKETS)
    )
    call_time_histogram: Histogram = field(
        default_factory=lambda: Histogram.empty(CALL_TIME_BUCKETS)
    )
    breaker_state: str = "closed"
    """The circuit breaker: ``closed``, ``open`` or ``half_open``."""
    active_alerts: frozenset[str] = frozenset()
    """The alert kinds currently firing."""
    budget_used_fraction: float | None = None
    """The used share of the budget (None: no budget)."""
    models: dict[str, ModelStatistics] = field(default_factory=dict)
    """Each model's own limits, learning and calls in flight (xAI limits per model)."""
    timeline: TimelineSnapshot | None = None
    """The run's time series per model (see :class:`TimelineSnapshot`), when kept."""

    @property
    def cost_usd(self) -> float:
        """Cost so far in US dollars (from the server's ``cost_in_usd_ticks``)."""
        return self.cost_in_usd_ticks / USD_TICKS_PER_USD

    @property
    def rate_limited_unknown(self) -> int:
        """429 rate limits that named neither the request nor the token dimension."""
        return self.rate_limited - self.rate_limited_requests - self.rate_limited_tokens


def attempt_outcome(error: APIError, *, is_rate_limit: bool = False) -> str:
    """The outcome label of one failed attempt (a few stable names, not one per class)."""
    if is_rate_limit or isinstance(error, RateLimitError):
        return "rate_limited"
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, APIConnectionError):
        return "connection_error"
    if isinstance(error, APIResponseValidationError):
        return "invalid_response"
    if isinstance(error, APIStatusError) and error.status_code is not None:
        return "server_error" if error.status_code >= 500 else "client_error"
    return "error"


def queue_levels(waiting: Iterable[tuple[int, float]], now: float) -> dict[int, tuple[int, float]]:
    """Summarise ``(priority, waiting_since)`` pairs into ``{priority: (depth, oldest_wait)}``.

    The scheduler calls this at snapshot time only (it walks the queue once).
    """
    levels: dict[int, tuple[int, float]] = {}
    for priority, since in waiting:
        depth, oldest = levels.get(priority, (0, 0.0))
        levels[priority] = (depth + 1, max(oldest, now - since))
    return levels


class _HistogramRecorder:
    """Fixed-bucket counts: one bisection and two additions per observation."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left puts a value equal to a bound into that bound's bucket (Prometheus "le").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> Histogram:
        return Histogram(self.bounds, tuple(self.counts), self.sum, self.count)


class StatsRecorder:
    """Mutable counters, updated on the hot path (plain integer increments only)."""

    __slots__ = (
        "_attempt_failures",
        "_call_histogram",
        "_call_times",
        "_failures",
        "_outcomes",
        "_queue_histogram",
        "_queue_waits",
        "cancelled_count",
        "completed_count",
        "cost_ticks",
        "dispatched_count",
        "failed_count",
        "rate_limited",
        "rate_limited_requests",
        "rate_limited_tokens",
        "retries",
        "submitted_count",
        "tokens",
    )

    def __init__(self) -> None:
        self.submitted_count = 0
        self.completed_count = 0
        self.failed_count = 0
        self.cancelled_count = 0
        self.retries = 0
        self.dispatched_count = 0
        self.rate_limited = 0
        self.rate_limited_requests = 0
        self.rate_limited_tokens = 0
        self.cost_ticks = 0
        self.tokens = [0, 0, 0, 0, 0]  # prompt, completion, reasoning, cached, total
        self._failures: Counter[str] = Counter()
        self._attempt_failures: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._queue_waits: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._call_times: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._queue_histogram = _HistogramRecorder(QUEUE_WAIT_BUCKETS)
        self._call_histogram = _HistogramRecorder(CALL_TIME_BUCKETS)

    def submitted(self, priority: int) -> None:
        """A job entered the queue."""
        self.submitted_count += 1

    def dispatched(self) -> None:
        """An attempt was sent."""
        self.dispatched_count += 1

    def cancelled(self) -> None:
        """A job's future was cancelled."""
        self.cancelled_count += 1

    def retried(self) -> None:
        """A failed attempt was scheduled for a retry."""
        self.retries += 1

    def completed(self, usage: Usage, queued_seconds: float, call_seconds: float) -> None:
        """A call answered successfully after ``queued_seconds`` in the queue."""
        self.completed_count += 1
        tokens = self.tokens
        tokens[0] += usage.prompt_tokens
        tokens[1] += usage.completion_tokens
        tokens[2] += usage.reasoning_tokens
        tokens[3] += usage.cached_tokens
        tokens[4] += usage.total_tokens
        if usage.cost_in_usd_ticks is not None:
            self.cost_ticks += usage.cost_in_usd_ticks
        self._queue_waits.append(queued_seconds)
        self._call_times.append(call_seconds)
        self._queue_histogram.observe(queued_seconds)
        self._call_histogram.observe(call_seconds)

    def failed_attempt(self, verdict: Verdict) -> None:
        """An attempt failed (it may still be retried)."""
        error = verdict.error
        self._attempt_failures[type(error).__name__] += 1
        self._outcomes[attempt_outcome(error, is_rate_limit=verdict.is_rate_limit)] += 1
        if verdict.is_rate_limit:
            self.rate_limited += 1
            if verdict.limit_dimension == "tokens":
                self.rate_limited_tokens += 1
            elif verdict.limit_dimension == "requests":
                self.rate_limited_requests += 1

    def failed(self, error: BaseException) -> None:
        """A job failed for good with ``error``."""
        self.failed_count += 1
        self._failures[type(error).__name__] += 1

    def snapshot(
        self,
        *,
        queued: int,
        in_flight: int,
        limiter: LimiterState | None,
        queue_by_priority: Mapping[int, tuple[int, float]] | None = None,
        breaker_state: str = "closed",
        active_alerts: frozenset[str] = frozenset(),
        budget_used_fraction: float | None = None,
        models: Mapping[str, ModelStatistics] | None = None,
        timeline: TimelineSnapshot | None = None,
    ) -> SchedulerStatistics:
        """Freeze the counters; the arguments add what only the scheduler knows.

        ``queue_by_priority`` maps priority to ``(depth, oldest_wait_seconds)``; see
        :func:`queue_levels`.
        """
        prompt, completion, reasoning, cached, total = self.tokens
        levels = {
            priority: QueueLevel(depth, oldest)
            for priority, (depth, oldest) in sorted((queue_by_priority or {}).items())
        }
        outcomes = {"success": self.completed_count, **self._outcomes}
        return SchedulerStatistics(
            submitted=self.submitted_count,
            completed=self.completed_count,
            failed=self.failed_count,
            cancelled=self.cancelled_count,
            retries=self.retries,
            dispatched=self.dispatched_count,
            rate_limited=self.rate_limited,
            rate_limited_requests=self.rate_limited_requests,
            rate_limited_tokens=self.rate_limited_tokens,
            queued=queued,
            in_flight=in_flight,
            failures_by_type=dict(self._failures),
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            cached_tokens=cached,
            total_tokens=total,
            cost_in_usd_ticks=self.cost_ticks,
            queue_wait=LatencySummary.of(self._queue_waits),
            call_time=LatencySummary.of(self._call_times),
            limiter=limiter,
            queue_by_priority=levels,
            oldest_wait=max((level.oldest_wait for level in levels.values()), default=0.0),
            attempt_failures_by_type=dict(self._attempt_failures),
            requests_by_outcome=outcomes,
            queue_wait_histogram=self._queue_histogram.snapshot(),
            call_time_histogram=self._call_histogram.snapshot(),
            breaker_state=breaker_state,
            active_alerts=active_alerts,
            budget_used_fraction=budget_used_fraction,
            models=dict(models or {}),
            timeline=timeline,
        )
