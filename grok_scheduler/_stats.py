"""Counters the scheduler keeps, and the frozen snapshot :meth:`Scheduler.statistics` returns."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._limits import LimiterState
from ._models import USD_TICKS_PER_USD, Usage

if TYPE_CHECKING:
    from ._classify import Verdict

__all__ = ["LatencySummary", "SchedulerStatistics", "StatsRecorder"]

_LATENCY_SAMPLES = 2048


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles (seconds) over the most recent calls."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, samples: deque[float]) -> LatencySummary:
        """Summarise ``samples`` (empty: all None)."""
        if not samples:
            return cls(None, None, None, None)
        ordered = sorted(samples)
        last = len(ordered) - 1

        def at(q: float) -> float:
            return ordered[round(q * last)]

        return cls(at(0.5), at(0.9), at(0.99), ordered[-1])


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
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_in_usd_ticks: int
    queue_wait: LatencySummary
    call_time: LatencySummary
    limiter: LimiterState | None = field(default=None)

    @property
    def cost_usd(self) -> float:
        """Cost so far in US dollars (from the server's ``cost_in_usd_ticks``)."""
        return self.cost_in_usd_ticks / USD_TICKS_PER_USD


class StatsRecorder:
    """Mutable counters, updated on the hot path (plain integer increments only)."""

    __slots__ = (
        "_call_times",
        "_failures",
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
        self._queue_waits: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._call_times: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    def submitted(self, priority: int) -> None:
        self.submitted_count += 1

    def dispatched(self) -> None:
        self.dispatched_count += 1

    def cancelled(self) -> None:
        self.cancelled_count += 1

    def retried(self) -> None:
        self.retries += 1

    def completed(self, usage: Usage, queued_seconds: float, call_seconds: float) -> None:
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

    def failed_attempt(self, verdict: Verdict) -> None:
        if verdict.is_rate_limit:
            self.rate_limited += 1
            if verdict.limit_dimension == "tokens":
                self.rate_limited_tokens += 1
            elif verdict.limit_dimension == "requests":
                self.rate_limited_requests += 1

    def failed(self, error: BaseException) -> None:
        self.failed_count += 1
        self._failures[type(error).__name__] += 1

    def snapshot(
        self, *, queued: int, in_flight: int, limiter: LimiterState | None
    ) -> SchedulerStatistics:
        prompt, completion, reasoning, cached, total = self.tokens
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
        )
