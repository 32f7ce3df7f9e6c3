"""A 429's Retry-After as the retry decision reads it: garbage is ignored, too long fails one job.

| input                                   | documented behaviour                                |
|-----------------------------------------|-----------------------------------------------------|
| garbage Retry-After                     | ignored: normal backoff, the job succeeds           |
| Retry-After above max_retry_after       | that job: RateLimitError at once; others not stalled|
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fakes import Server, error, make_scheduler

from grok_scheduler import (
    FakeClock,
    RateLimitError,
    RetryPolicy,
)

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3, max_retry_after=60.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _tolerant_server(clock: FakeClock) -> Server:
    return Server(clock, latency=0.01)


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


@pytest.mark.parametrize("value", ["soon", "-5", "1e309", "NaN", "", "Thu, 99 Foo 2015", "∞"])
async def test_garbage_retry_after_is_ignored_and_the_job_succeeds(
    clock: FakeClock, value: str
) -> None:
    """A 429 with an unreadable Retry-After falls back to normal backoff; the retry succeeds."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": value}))
    async with make_scheduler(clock, server, retry=FAST_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=30.0)
    assert future.result().attempts == 2


async def test_retry_after_above_the_policy_fails_that_job_at_once(clock: FakeClock) -> None:
    """Retry-After: 86400 with max_retry_after=60 fails the job with RateLimitError."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "86400"}))
    async with make_scheduler(clock, server, retry=FAST_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=5.0)
        exc = future.exception()
        assert isinstance(exc, RateLimitError)
        assert exc.retry_after == 86400
        await scheduler.aclose(cancel=True)


async def test_retry_after_above_the_policy_does_not_stall_other_jobs(clock: FakeClock) -> None:
    """After a too-long Retry-After, other jobs still run within max_retry_after."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "86400"}))
    async with make_scheduler(clock, server, retry=FAST_RETRY, max_concurrency=1) as scheduler:
        first = scheduler.submit_nowait("first")
        await _settle(clock, first, limit=5.0)
        second = scheduler.submit_nowait("second")
        await _settle(clock, second, limit=FAST_RETRY.max_retry_after)
        assert second.result().text
        await scheduler.aclose(cancel=True)
