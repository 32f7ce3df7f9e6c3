"""A server's remaining count describes the moment it admitted the call, not the answer's arrival.

Read as the level now, "remaining 0" from a call that took 0.7 s stalls a 1 rps pool for a
refill it already had: with lognormal latency the pace fell to 1.37 x ideal with headers, worse
than with none. The limiter ages a count from the send (refilled since, minus what was sent
since) and lets no older count override a fresher one.
"""

from __future__ import annotations

import asyncio

import pytest
from worlds import World, make_world_scheduler

from grok_scheduler import FakeClock, LocalLimiter, RateLimitHeaders
from grok_scheduler.simulator import SimulatorConfig

JOBS = 40


@pytest.mark.parametrize("given", [1.0, None])
@pytest.mark.parametrize("evidence", ["openai-1s", "ietf"])
async def test_variable_latency_with_headers_keeps_the_pace(
    evidence: str, given: float | None
) -> None:
    clock = FakeClock()
    config = SimulatorConfig(
        requests_per_second=1.0,
        latency=1.0,
        latency_dist="lognormal",
        latency_sigma=0.5,
        headers=evidence,  # type: ignore[arg-type]
        seed=1,
    )
    world = World(config, clock)
    async with make_world_scheduler(
        clock, world, requests_per_second=given, max_concurrency=None
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    assert all(f.exception() is None for f in futures)
    sends = [s.at for s in world.sent]
    ratio = (max(sends) - min(sends)) / (JOBS - 1.0)
    assert ratio <= 1.10, f"time to the last send {ratio:.3f} x ideal"
    assert world.share_429 <= 0.03, f"{world.share_429:.1%} answered 429"


def _full_then_spent_one_at_zero() -> LocalLimiter:
    """A 1 rps limiter, full at 0 (created long before), that sent one request at 0."""
    limiter = LocalLimiter(requests_per_second=1.0, tokens_per_minute=None, now=-10.0)
    assert limiter.try_acquire(0, 0.0) == 0.0
    return limiter


@pytest.mark.parametrize(
    ("counted_at", "now", "expected_delay"),
    [
        (0.0, 0.7, 0.3),  # none remained at the send: the refill since counts
        (0.0, 2.5, 0.0),  # counted 2.5 s ago: long refilled
        (0.7, 0.7, 1.0),  # counted now: nothing is left now
    ],
)
def test_a_count_is_aged_from_when_it_was_counted(
    counted_at: float, now: float, expected_delay: float
) -> None:
    limiter = _full_then_spent_one_at_zero()
    headers = RateLimitHeaders(requests_remaining=0.0, requests_reset=1.0, counted_at=counted_at)
    limiter.observe_headers(headers, now)
    assert limiter.delay(0, now) == pytest.approx(expected_delay, abs=1e-6)


def test_a_count_ages_by_what_was_sent_after_it() -> None:
    limiter = LocalLimiter(requests_per_second=10.0, tokens_per_minute=None, now=0.0)
    for at in (0.0, 0.1, 0.2):
        assert limiter.try_acquire(0, at) == 0.0
    # Counted at the first send: 2 remained. Since: 0.3 s of refill (3) and 2 more sends.
    headers = RateLimitHeaders(requests_remaining=2.0, requests_reset=0.5, counted_at=0.0)
    limiter.observe_headers(headers, 0.3)
    assert limiter.state(0.3).requests_available == pytest.approx(3.0)


def test_an_older_count_never_overrides_a_fresher_one() -> None:
    limiter = LocalLimiter(requests_per_second=None, tokens_per_minute=None, now=0.0)
    fresher = RateLimitHeaders(requests_remaining=5.0, requests_reset=0.5, counted_at=2.0)
    limiter.observe_headers(fresher, 2.5)
    older = RateLimitHeaders(requests_remaining=0.0, requests_reset=1.0, counted_at=1.8)
    limiter.observe_headers(older, 2.6)
    assert limiter.delay(0, 2.6) == 0.0


def test_none_remaining_with_no_rate_pauses_until_the_reset_counted_from_the_send() -> None:
    limiter = LocalLimiter(requests_per_second=None, tokens_per_minute=None, now=0.0)
    headers = RateLimitHeaders(requests_remaining=0.0, requests_reset=1.0, counted_at=0.0)
    limiter.observe_headers(headers, 0.7)
    assert limiter.delay(0, 0.7) == pytest.approx(0.3)
