"""Circuit breaker, alerts, budget and statistics as the scheduler uses them, in virtual time."""

from __future__ import annotations

import asyncio

import pytest
from fakes import Server, error, make_scheduler, ok

from grok_scheduler import (
    Alert,
    AlertPolicy,
    AuthenticationError,
    BreakerPolicy,
    BudgetExceededError,
    FakeClock,
    Priority,
    RetryPolicy,
)

FAST = RetryPolicy(max_attempts=50, base_delay=0.01, max_delay=0.05, total_timeout=None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_breaker_stops_sending_during_an_outage_then_probes(clock: FakeClock) -> None:
    """Ten straight 503s open the breaker: nothing is sent for the cool-down, then one probe."""
    server = Server(clock, latency=0.0)
    server.script += [error(503, "The model is at capacity")] * 10
    policy = BreakerPolicy(min_calls=10, failure_ratio=0.5, cooldown=15.0)
    async with make_scheduler(
        clock, server, requests_per_second=100, retry=FAST, breaker=policy
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(5)]
        await clock.advance(5.0)
        assert len(server.sent) == 10
        assert scheduler.statistics().breaker_state == "open"
        await clock.advance(9.0)
        assert len(server.sent) == 10
        await clock.run_until_done(asyncio.gather(*futures))
        assert scheduler.statistics().breaker_state == "closed"
    assert len(server.sent) == 15
    probe_time = server.sent[10][0] - 1000.0
    assert 15.0 <= probe_time <= 16.0


async def test_bad_key_fails_a_thousand_queued_jobs_after_one_request(clock: FakeClock) -> None:
    """1,000 queued jobs and a wrong key: one request is sent, all fail with the same error."""
    server = Server(
        clock,
        latency=0.0,
        answer=lambda body: error(
            400, "Incorrect API key provided: xa***42.", code="Client specified an invalid argument"
        ),
    )
    async with make_scheduler(clock, server, max_concurrency=8) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(1000)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    assert len(server.sent) == 1
    assert all(isinstance(f.exception(), AuthenticationError) for f in futures)


async def test_budget_refuses_jobs_before_they_are_sent(clock: FakeClock) -> None:
    """With a 100-token budget, a job estimated past it raises BudgetExceededError at submit."""
    server = Server(
        clock, latency=0.0, answer=lambda body: ok("x", prompt_tokens=10, completion_tokens=10)
    )
    async with make_scheduler(clock, server, token_budget=100) as scheduler:
        first = scheduler.submit_nowait("short", max_tokens=50)
        with pytest.raises(BudgetExceededError):
            scheduler.submit_nowait("short", max_tokens=90)
        await clock.run_until_done(first)
        # Settled at 20 real tokens, the budget has room again.
        second = scheduler.submit_nowait("short", max_tokens=50)
        await clock.run_until_done(second)
    assert len(server.sent) == 2


async def test_error_rate_alert_fires_and_recovers(clock: FakeClock) -> None:
    """Mostly-failing calls fire the error-rate alert; a run of successes recovers it."""
    seen: list[Alert] = []
    server = Server(clock, latency=0.0)
    server.script += [error(500, "Internal error", code="Internal error")] * 8
    async with make_scheduler(
        clock,
        server,
        requests_per_second=100,
        retry=FAST,
        alerts=AlertPolicy(error_rate=0.3, error_window=10.0, min_calls=5),
        on_alert=seen.append,
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(3)]
        await clock.run_until_done(asyncio.gather(*futures))
        # The failures leave the 10 s window before the successes come: submitted at once,
        # the successes would all land inside it and nothing would look at the rate later.
        await clock.advance(11.0)
        later = [scheduler.submit_nowait(f"later {i}") for i in range(40)]
        await clock.run_until_done(asyncio.gather(*later))
    kinds = [(alert.kind, alert.firing) for alert in seen]
    assert ("error_rate", True) in kinds
    assert kinds.index(("error_rate", True)) < kinds.index(("error_rate", False))


async def test_statistics_count_what_happened(clock: FakeClock) -> None:
    """statistics() reports queue depth by priority, tokens, retries and 429s."""
    server = Server(
        clock, latency=0.0, answer=lambda body: ok("x", prompt_tokens=3, completion_tokens=2)
    )
    server.script.append(error(429, "Rate limit exceeded: requests per second"))
    async with make_scheduler(clock, server, requests_per_second=1, max_concurrency=1) as scheduler:
        futures = [scheduler.submit_nowait(f"j{i}", priority=Priority.LOW) for i in range(3)]
        futures.append(scheduler.submit_nowait("h", priority=Priority.HIGH))
        stats = scheduler.statistics()
        assert stats.queued == 4
        assert stats.queue_by_priority[Priority.LOW].depth == 3
        await clock.run_until_done(asyncio.gather(*futures))
        stats = scheduler.statistics()
    assert stats.completed == 4
    assert stats.rate_limited == 1
    assert stats.rate_limited_requests == 1
    assert stats.retries == 1
    assert stats.total_tokens == 20
    assert stats.cost_in_usd_ticks == 4000
