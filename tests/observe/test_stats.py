"""Statistics: counters, outcomes, histograms, percentiles and per-priority queue levels."""

from __future__ import annotations

import asyncio

import pytest
from fakes import Server, error, make_scheduler

from grok_scheduler import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    FakeClock,
    InternalServerError,
    RateLimitError,
    Usage,
)
from grok_scheduler._errors import APIError, APIResponseValidationError, QuotaExhaustedError
from grok_scheduler._observe._stats import (
    CALL_TIME_BUCKETS,
    QUEUE_WAIT_BUCKETS,
    Histogram,
    LatencySummary,
    QueueLevel,
    StatsRecorder,
    attempt_outcome,
    queue_levels,
)
from grok_scheduler._wire._classify import Verdict


def verdict(error: APIError, *, rate_limit: bool = False, dimension: str | None = None) -> Verdict:
    """A failed attempt's verdict, as the classifier would give it."""
    return Verdict(error, True, None, dimension, rate_limit)  # type: ignore[arg-type]


def test_snapshot_counts_jobs_tokens_and_cost() -> None:
    """Completed calls add up their usage and cost; job counters are reported as recorded."""
    stats = StatsRecorder()
    for _ in range(3):
        stats.submitted(2)
    stats.dispatched()
    stats.dispatched()
    stats.completed(Usage(10, 5, 2, 4, 17, 1000), 0.5, 1.5)
    stats.completed(Usage(20, 6, 0, 0, 26, None), 1.0, 2.0)
    stats.cancelled()
    snap = stats.snapshot(queued=1, in_flight=0, limiter=None)
    assert (snap.submitted, snap.dispatched, snap.completed, snap.cancelled) == (3, 2, 2, 1)
    assert (snap.prompt_tokens, snap.completion_tokens, snap.reasoning_tokens) == (30, 11, 2)
    assert (snap.cached_tokens, snap.total_tokens) == (4, 43)
    assert snap.cost_in_usd_ticks == 1000
    assert snap.cost_usd == pytest.approx(1e-7)
    assert snap.queued == 1


def test_failures_are_counted_by_type_and_outcome() -> None:
    """Failed attempts count by class and outcome label; jobs that failed for good by class."""
    stats = StatsRecorder()
    stats.failed_attempt(verdict(InternalServerError("boom", status_code=503)))
    stats.failed_attempt(verdict(InternalServerError("boom", status_code=500)))
    stats.failed_attempt(verdict(APITimeoutError()))
    stats.failed_attempt(verdict(BadRequestError("bad", status_code=400)))
    stats.failed(InternalServerError("boom", status_code=500))
    stats.failed(BadRequestError("bad", status_code=400))
    stats.completed(Usage(), 0.0, 0.1)
    snap = stats.snapshot(queued=0, in_flight=0, limiter=None)
    assert snap.attempt_failures_by_type == {
        "InternalServerError": 2,
        "APITimeoutError": 1,
        "BadRequestError": 1,
    }
    assert snap.failures_by_type == {"InternalServerError": 1, "BadRequestError": 1}
    assert snap.failed == 2
    assert snap.requests_by_outcome == {
        "success": 1,
        "server_error": 2,
        "timeout": 1,
        "client_error": 1,
    }


def test_429s_are_split_by_dimension() -> None:
    """429s count per dimension; those naming none are the remainder."""
    stats = StatsRecorder()
    limited = RateLimitError("slow down")
    stats.failed_attempt(verdict(limited, rate_limit=True, dimension="tokens"))
    stats.failed_attempt(verdict(limited, rate_limit=True, dimension="tokens"))
    stats.failed_attempt(verdict(limited, rate_limit=True, dimension="requests"))
    stats.failed_attempt(verdict(limited, rate_limit=True))
    snap = stats.snapshot(queued=0, in_flight=0, limiter=None)
    assert snap.rate_limited == 4
    assert (snap.rate_limited_tokens, snap.rate_limited_requests) == (2, 1)
    assert snap.rate_limited_unknown == 1
    assert snap.requests_by_outcome == {"success": 0, "rate_limited": 4}


@pytest.mark.parametrize(
    ("error", "rate_limit", "outcome"),
    [
        (RateLimitError("capacity"), False, "rate_limited"),
        (InternalServerError("x", status_code=500), True, "rate_limited"),
        (APITimeoutError(), False, "timeout"),
        (APIConnectionError("reset"), False, "connection_error"),
        (APIResponseValidationError("not json", status_code=200), False, "invalid_response"),
        (InternalServerError("x", status_code=502), False, "server_error"),
        (QuotaExhaustedError("no credits", status_code=429), False, "client_error"),
        (BadRequestError("x", status_code=400), False, "client_error"),
        (APIError("odd"), False, "error"),
    ],
)
def test_attempt_outcome_labels(error: APIError, rate_limit: bool, outcome: str) -> None:
    """Each error maps to one of a few stable outcome labels."""
    assert attempt_outcome(error, is_rate_limit=rate_limit) == outcome


def test_histograms_put_values_on_a_bound_into_that_bucket() -> None:
    """Buckets are 'less or equal' (Prometheus le); values above every bound overflow."""
    stats = StatsRecorder()
    for seconds in (0.1, 0.1000001, 5.0, 10_000.0):
        stats.completed(Usage(), seconds, seconds)
    histogram = stats.snapshot(queued=0, in_flight=0, limiter=None).call_time_histogram
    assert histogram.bounds == CALL_TIME_BUCKETS
    assert histogram.count == 4
    assert histogram.sum == pytest.approx(10_005.2000001)
    counts = dict(zip((*CALL_TIME_BUCKETS, float("inf")), histogram.counts, strict=True))
    assert counts[0.1] == 1
    assert counts[0.25] == 1
    assert counts[5.0] == 1
    assert counts[float("inf")] == 1
    assert histogram.cumulative()[-1] == 4
    assert histogram.cumulative()[CALL_TIME_BUCKETS.index(5.0)] == 3


def test_empty_histogram_and_summary() -> None:
    """With nothing recorded the histograms are all zero and percentiles are None."""
    snap = StatsRecorder().snapshot(queued=0, in_flight=0, limiter=None)
    assert snap.queue_wait_histogram == Histogram.empty(QUEUE_WAIT_BUCKETS)
    assert snap.queue_wait_histogram.cumulative() == (0,) * (len(QUEUE_WAIT_BUCKETS) + 1)
    assert snap.call_time == LatencySummary(None, None, None, None)


def test_latency_percentiles_over_recent_calls() -> None:
    """p50/p90/p99/max come from the recorded samples."""
    stats = StatsRecorder()
    for index in range(1, 101):
        stats.completed(Usage(), index / 100, float(index))
    snap = stats.snapshot(queued=0, in_flight=0, limiter=None)
    assert snap.call_time.p50 == pytest.approx(51.0, abs=1.0)
    assert snap.call_time.p90 == pytest.approx(90.0, abs=1.0)
    assert snap.call_time.p99 == pytest.approx(99.0, abs=1.0)
    assert snap.call_time.max == 100.0
    assert snap.queue_wait.max == 1.0


def test_queue_levels_summarise_depth_and_oldest_wait_per_priority() -> None:
    """queue_levels counts jobs per priority and keeps each level's longest wait."""
    levels = queue_levels([(2, 90.0), (0, 99.0), (2, 50.0), (2, 95.0)], now=100.0)
    assert levels == {2: (3, 50.0), 0: (1, 1.0)}
    assert queue_levels([], now=100.0) == {}


def test_snapshot_reports_queue_levels_breaker_alerts_and_budget() -> None:
    """What the scheduler passes in comes out as typed fields, priorities sorted."""
    snap = StatsRecorder().snapshot(
        queued=4,
        in_flight=1,
        limiter=None,
        queue_by_priority={3: (1, 2.0), 0: (3, 40.0)},
        breaker_state="open",
        active_alerts=frozenset({"error_rate"}),
        budget_used_fraction=0.5,
    )
    assert list(snap.queue_by_priority) == [0, 3]
    assert snap.queue_by_priority[0] == QueueLevel(depth=3, oldest_wait=40.0)
    assert snap.oldest_wait == 40.0
    assert snap.breaker_state == "open"
    assert snap.active_alerts == frozenset({"error_rate"})
    assert snap.budget_used_fraction == 0.5


def test_snapshot_defaults_without_scheduler_extras() -> None:
    """Called the old way, the new fields have quiet defaults."""
    snap = StatsRecorder().snapshot(queued=0, in_flight=0, limiter=None)
    assert snap.queue_by_priority == {}
    assert snap.oldest_wait == 0.0
    assert snap.breaker_state == "closed"
    assert snap.active_alerts == frozenset()
    assert snap.budget_used_fraction is None


async def test_a_scheduler_run_is_counted_exactly() -> None:
    """Through a real Scheduler: a token 429 and a 503 are retried, and every number matches."""
    clock = FakeClock()
    server = Server(clock, latency=0.5)
    server.script += [
        error(429, "Rate limit exceeded: tokens per minute", headers={"retry-after": "1"}),
        error(503, "Service unavailable", code="Internal error"),
    ]
    async with make_scheduler(clock, server, max_concurrency=1) as scheduler:
        futures = [scheduler.submit_nowait(f"job {index}", priority=index) for index in range(3)]
        done: asyncio.Future[object] = asyncio.ensure_future(asyncio.gather(*futures))
        await clock.run_until_done(done)
        snap = scheduler.statistics()
    assert len(server.sent) == 5
    assert (snap.submitted, snap.completed, snap.failed, snap.dispatched) == (3, 3, 0, 5)
    assert snap.retries == 2
    assert (snap.rate_limited, snap.rate_limited_tokens) == (1, 1)
    assert snap.requests_by_outcome == {"success": 3, "rate_limited": 1, "server_error": 1}
    assert snap.attempt_failures_by_type == {"RateLimitError": 1, "InternalServerError": 1}
    assert snap.total_tokens == 45  # three answers of 10 + 5 tokens
    assert snap.cost_in_usd_ticks == 3000
    assert snap.call_time_histogram.count == 3
    assert snap.call_time_histogram.sum == pytest.approx(1.5)
    assert snap.queued == 0
