"""Two small outcome-path defects of issue 13 (item 10), in virtual time.

| case                                             | documented behaviour                      |
|--------------------------------------------------|-------------------------------------------|
| a 429 with ``Retry-After: 0``                    | retried at once                           |
| a second ``Retry-After: 0`` in a row for the job | normal backoff (and a pool-wide pause)    |
| a job cancelled while its call is in flight,     | counted once, as cancelled (not failed)   |
| whose call then fails                            |                                           |
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from fakes import Server, error, make_scheduler

from grok_scheduler import FakeClock, RetryPolicy, TransportResponse

_LATENCY = 0.01
# Backoff after the n-th failure is at least base_delay * 2**(n-1) / 2: 0.5 s after the second.
_RETRY = RetryPolicy(base_delay=0.5, max_delay=30.0, max_attempts=8)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


def _retry_now() -> TransportResponse:
    return error(429, "Rate limit exceeded", headers={"retry-after": "0"})


async def test_retry_after_zero_is_retried_at_once_but_only_once(clock: FakeClock) -> None:
    """Retry-After: 0 twice in a row: the first retry goes at once, the second backs off."""
    server = Server(clock, latency=_LATENCY)
    server.script.extend([_retry_now(), _retry_now(), _retry_now()])
    async with make_scheduler(clock, server, retry=_RETRY, max_concurrency=1) as scheduler:
        future = scheduler.submit_nowait("p")
        await clock.run_until_done(future, limit=60.0)
    assert future.result().attempts == 4
    sent = [at for at, _ in server.sent]
    gaps = [later - earlier - _LATENCY for earlier, later in itertools.pairwise(sent)]
    # "Now" means now: no more than Retry-After's small spread after the answer.
    assert gaps[0] < 0.05
    # Said again: normal backoff after the second failure (>= 0.5 s), not another instant retry.
    assert gaps[1] >= 0.5
    # The third is a repeat too: still no tight loop.
    assert gaps[2] >= 1.0


async def test_a_repeated_retry_after_zero_pauses_the_pool(clock: FakeClock) -> None:
    """After a second Retry-After: 0 in a row, other jobs wait a congestion pause too."""
    server = Server(clock, latency=_LATENCY)
    server.script.extend([_retry_now(), _retry_now()])
    async with make_scheduler(clock, server, retry=_RETRY, max_concurrency=1) as scheduler:
        first = scheduler.submit_nowait("first")
        await clock.advance(0.05)  # both 429s answered: the second at about 0.03 s
        assert len(server.sent) == 2
        second_429_at = server.sent[1][0] + _LATENCY
        other = scheduler.submit_nowait("other")
        await clock.run_until_done(asyncio.gather(first, other), limit=60.0)
    other_sent_at = next(at for at, prompt in server.sent if prompt == "other")
    # A congestion pause (0.25 s, jittered by at most a quarter), not a 0 s one.
    assert other_sent_at - second_429_at >= 0.25 * 0.75


async def test_a_job_cancelled_in_flight_that_then_fails_counts_once(clock: FakeClock) -> None:
    """Cancelled during its call, then the call fails: cancelled 1, failed 0 in statistics."""
    server = Server(clock, latency=1.0)
    server.script.append(error(500, "The service is currently unavailable"))
    async with make_scheduler(clock, server, retry=_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await clock.advance(0.5)
        assert len(server.sent) == 1
        future.cancel()
        await clock.advance(1.0)  # the 500 comes back for the cancelled job
        stats = scheduler.statistics()
    assert future.cancelled()
    assert len(server.sent) == 1
    assert stats.cancelled == 1
    assert stats.failed == 0
    assert stats.failures_by_type == {}
