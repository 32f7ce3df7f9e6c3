"""One contract for every Limiter: the same cases and answers for LocalLimiter and RedisLimiter.

Each test runs twice: on a :class:`LocalLimiter` in virtual time (a ``FakeClock``), and on a
:class:`RedisLimiter` against the real Redis server (skipped without one, failed under
``GROK_SCHEDULER_REQUIRE_REDIS=1``). Redis refills on its own clock, which a test cannot step, so
:meth:`RedisSubject.advance` moves the stored time stamps back instead (the fields ``rt``, ``tt``,
``pause`` and ``urg`` of ``_lua.py``): the script then sees exactly that much time pass. The real
time a test spends talking to Redis still passes too, so a Redis wait is checked against its
exact figure less that time, as ``tests/distributed/test_redis_limiter.py`` does; nothing sleeps.

There are no known differences: the Redis scripts apply LocalLimiter's rules (the same bursts,
a request bucket that starts half full, debt capped at one bucket, a request without tokens never
held by token debt), so every expectation below is the local limiter's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from redis_support import delete_keys, require_redis, unique_key

from grok_scheduler import Limiter, LimiterState, LocalLimiter, RateLimitHeaders
from grok_scheduler._clock import FakeClock
from grok_scheduler._limits._base import NONE_REMAIN_REASON


def token_burst(tokens_per_minute: float) -> float:
    """The most tokens a bucket holds: a minute's worth less a quarter second of refill."""
    return tokens_per_minute * (1.0 - 0.25 / 60.0)


class Subject:
    """One limiter under test, driven in the same virtual time whatever its kind."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self.clock = FakeClock()  # every subject starts at the same virtual instant
        self.woken = 0
        limiter.set_listener(self._wake)

    def _wake(self) -> None:
        self.woken += 1

    def now(self) -> float:
        return self.clock.now()

    async def acquire(self, tokens: int = 0) -> float:
        return await self.limiter.acquire(tokens, self.now())

    async def grants(self, n: int, tokens: int = 0) -> int:
        """How many of ``n`` acquisitions at this instant were admitted."""
        return sum([await self.acquire(tokens) == 0.0 for _ in range(n)])

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    async def state(self) -> LimiterState:
        return self.limiter.state(self.now())

    def assert_wait(self, wait: float, expected: float) -> None:
        assert wait == pytest.approx(expected, abs=1e-9)

    def assert_granted(self, granted: int, expected: int, rate: float) -> None:
        assert granted == expected

    def assert_level(self, level: float | None, expected: float, rate: float) -> None:
        assert level == pytest.approx(expected, abs=1e-9)


class LocalSubject(Subject):
    pass


class RedisSubject(Subject):
    def __init__(self, limiter: Any, url: str, started: float) -> None:
        super().__init__(limiter)
        self._redis = limiter
        self._url = url
        # When the key's buckets began: before the first call went, not after it came back
        # (on a loaded machine that round trip alone took longer than the slack below).
        self._started = started

    def _elapsed(self) -> float:
        # Redis's TIME is the wall clock, the loop's the monotonic one: allow them to disagree
        # by a few milliseconds (clock slewing on a busy virtual machine).
        return asyncio.get_running_loop().time() - self._started + 0.005

    async def advance(self, seconds: float) -> None:
        # Everything this process has to report must be stored before its time stamps move.
        await self._redis.flush()
        import redis

        client = redis.Redis.from_url(self._url, decode_responses=True)
        try:
            for field in ("rt", "tt", "pause", "urg"):
                if client.hexists(self._redis.key, field):
                    client.hincrbyfloat(self._redis.key, field, -seconds)
        finally:
            client.close()
        await super().advance(seconds)

    async def state(self) -> LimiterState:
        await self._redis.flush()
        return await super().state()

    def assert_wait(self, wait: float, expected: float) -> None:
        # Real time passed since the state was set up: the wait can only be that much shorter.
        assert expected - self._elapsed() < wait <= expected + 1e-9

    def assert_granted(self, granted: int, expected: int, rate: float) -> None:
        # Real time refilled the shared bucket while the calls went: at most that many more.
        assert expected <= granted <= expected + math.ceil(rate * self._elapsed())

    def assert_level(self, level: float | None, expected: float, rate: float) -> None:
        assert level is not None
        assert expected - 1e-9 <= level <= expected + rate * self._elapsed()


Make = Callable[..., Awaitable[Subject]]


@pytest_asyncio.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """``await make(requests_per_second=..., tokens_per_minute=...)``: a fresh subject."""
    if request.param == "local":

        async def local(**limits: float | None) -> Subject:
            return LocalSubject(LocalLimiter(**limits, now=FakeClock().now()))

        yield local
        return

    from grok_scheduler.distributed import RedisLimiter
    from grok_scheduler.distributed._messages import Report

    url = require_redis()
    made: list[RedisLimiter] = []

    async def shared(**limits: float | None) -> Subject:
        # No bookings: a booking only saves a round trip, the answers are the same without.
        limiter = RedisLimiter(url=url, key=unique_key(), max_booking=0.0, **limits)
        made.append(limiter)
        # A LocalLimiter's buckets start when it is made, a Redis key's on the first call: make
        # that call now (an empty report), so both start at the same instant.
        started = asyncio.get_running_loop().time()
        await limiter._send(Report())
        return RedisSubject(limiter, url, started)

    try:
        yield shared
    finally:
        for limiter in made:
            await limiter.aclose()
        if made:
            delete_keys(url, *{limiter.key for limiter in made})


# -- the first burst ------------------------------------------------------------------------
async def test_the_request_bucket_starts_half_full(make: Make) -> None:
    """1 rps holds one request and a fresh limiter (or Redis key) starts with half of it."""
    subject = await make(requests_per_second=1, tokens_per_minute=None)
    subject.assert_granted(await subject.grants(3), 0, rate=1)
    subject.assert_wait(await subject.acquire(), 0.5)


@pytest.mark.parametrize(
    ("burst_seconds", "burst"),
    [(1.0, 9.0), (2.0, 19.0), (0.5, 4.5), (0.05, 1.0)],  # 10 x (burst - min(0.1, burst / 10))
)
async def test_the_request_burst_follows_burst_seconds(
    make: Make, burst_seconds: float, burst: float
) -> None:
    """10 rps holds max(1, 10 x (burst_seconds - its headroom)) requests, whatever the length."""
    subject = await make(
        requests_per_second=10, tokens_per_minute=None, burst_seconds=burst_seconds
    )
    await subject.advance(burst_seconds)  # full, from half full
    subject.assert_granted(await subject.grants(int(burst) + 1), int(burst), rate=10)
    subject.assert_wait(await subject.acquire(), (1 - (burst - int(burst))) / 10)


# -- both dimensions ------------------------------------------------------------------------
async def test_requests_burst_then_a_wait_of_one_refill(make: Make) -> None:
    """10 rps keeps 9 requests of burst in hand; the 10th waits a tenth of a second."""
    subject = await make(requests_per_second=10, tokens_per_minute=None)
    await subject.advance(1.0)  # a full bucket
    subject.assert_granted(await subject.grants(9), 9, rate=10)
    subject.assert_wait(await subject.acquire(), 0.1)


async def test_tokens_dimension_waits_for_its_refill(make: Make) -> None:
    """600 tokens/min: 400 pass, the next 400 wait for what is missing at 10 tokens/s."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)  # 597.5
    assert await subject.acquire(400) == 0.0
    subject.assert_wait(await subject.acquire(400), (400 - (burst - 400)) / 10)


async def test_the_limiter_binds_on_tokens_when_they_run_out_first(make: Make) -> None:
    """With requests to spare, a job waits for the tokens it lacks (9.95 s)."""
    subject = await make(requests_per_second=100, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(int(burst)) == 0.0
    subject.assert_wait(await subject.acquire(100), (100 - (burst - int(burst))) / 10)


async def test_both_dimensions_wait_for_the_slower_one(make: Make) -> None:
    """A request needs credit in both buckets: the longer of the two waits is returned."""
    subject = await make(requests_per_second=100, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(int(burst) - 10) == 0.0  # 587: 9.05 s for 100 more
    subject.assert_wait(await subject.acquire(100), (100 - (burst - int(burst) + 10)) / 10)
    slow = await make(requests_per_second=1, tokens_per_minute=600)
    await slow.advance(1.0)
    assert await slow.acquire(10) == 0.0
    slow.assert_wait(await slow.acquire(10), 1.0)  # tokens to spare, the request bucket empty


async def test_unlimited_dimensions_never_wait(make: Make) -> None:
    """A limiter with no limits admits at once."""
    subject = await make(requests_per_second=None, tokens_per_minute=None)
    assert await subject.grants(1000, tokens=10**6) == 1000


# -- settle and refund ----------------------------------------------------------------------
async def test_settle_returns_unused_tokens_and_wakes_the_gate(make: Make) -> None:
    """Settling 500 reserved to 100 used gives 400 back at once, and calls the listener."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(500) == 0.0
    subject.assert_wait(await subject.acquire(400), (400 - (burst - 500)) / 10)
    subject.limiter.settle(500, 100, subject.now())
    assert subject.woken == 1
    assert await subject.acquire(400) == 0.0


async def test_settle_then_refund_gives_back_the_exact_amounts(make: Make) -> None:
    """540 reserved, 60 used: 480 come back (the level is the burst less 60); a refund the rest."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(540) == 0.0
    subject.limiter.settle(540, 60, subject.now())
    subject.assert_level((await subject.state()).tokens_available, burst - 60, 10.0)
    subject.limiter.refund(480, subject.now())
    assert await subject.acquire(540) == 0.0


async def test_settle_above_the_reservation_takes_the_difference(make: Make) -> None:
    """Using more than reserved charges the extra, and does not wake the gate."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(100) == 0.0
    subject.limiter.settle(100, 600, subject.now())
    assert subject.woken == 0
    subject.assert_wait(await subject.acquire(200), (200 - (burst - 600)) / 10)


async def test_refund_returns_the_request_and_its_tokens(make: Make) -> None:
    """A call that never reached the server gives back its request slot and tokens."""
    subject = await make(requests_per_second=1, tokens_per_minute=600)
    await subject.advance(1.0)
    assert await subject.acquire(600) == 0.0
    subject.assert_wait(await subject.acquire(600), 60.0)  # the tokens bind: 600 at 10/s
    subject.limiter.refund(600, subject.now())
    assert subject.woken == 1
    assert await subject.acquire(600) == 0.0


# -- too large, and debt --------------------------------------------------------------------
async def test_oversized_job_passes_on_a_full_bucket_and_leaves_debt(make: Make) -> None:
    """A job above the whole token burst goes once the bucket is full; later work repays it."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(1000) == 0.0
    subject.assert_wait(await subject.acquire(10), (10 + 1000 - burst) / 10)


async def test_debt_from_absurd_usage(make: Make) -> None:
    """Usage far above the reservation leaves one bucket of debt, not all of it (issue 13.4)."""
    subject = await make(requests_per_second=None, tokens_per_minute=600)
    burst = token_burst(600)
    assert await subject.acquire(100) == 0.0
    subject.limiter.settle(100, 100_000, subject.now())
    subject.assert_wait(await subject.acquire(10), (10 + burst) / 10)


async def test_a_request_without_tokens_is_not_held_by_token_debt(make: Make) -> None:
    """In token debt, a 0-token request still goes when requests are left; a 1-token one waits."""
    subject = await make(requests_per_second=10, tokens_per_minute=600)
    await subject.advance(1.0)
    assert await subject.acquire(1000) == 0.0
    assert await subject.acquire(0) == 0.0
    subject.assert_wait(await subject.acquire(1), (1 + 1000 - token_burst(600)) / 10)


# -- limits changed live --------------------------------------------------------------------
async def test_resizing_live_clamps_the_level_and_never_raises_it(make: Make) -> None:
    """A lower limit clamps the level to its burst; a higher one refills faster, from there."""
    subject = await make(requests_per_second=5, tokens_per_minute=None)
    await subject.advance(1.0)
    assert await subject.grants(2) == 2
    limiter = subject.limiter
    limiter.set_limits(requests_per_second=1, tokens_per_minute=None, now=subject.now(), reason="a")
    assert subject.woken == 1
    assert limiter.requests_per_second == 1
    subject.assert_granted(await subject.grants(2), 1, rate=1)
    subject.assert_wait(await subject.acquire(), 1.0)
    limiter.set_limits(requests_per_second=4, tokens_per_minute=None, now=subject.now(), reason="b")
    subject.assert_wait(await subject.acquire(), 0.25)
    assert (await subject.state()).last_change_reason == "b"


async def test_a_newly_limited_token_dimension_starts_full_and_keeps_its_level(
    make: Make,
) -> None:
    """Limiting tokens live starts a full bucket; raising the limit then keeps the level."""
    subject = await make(requests_per_second=None, tokens_per_minute=None)
    limiter = subject.limiter
    limiter.set_limits(
        requests_per_second=None, tokens_per_minute=600, now=subject.now(), reason="live"
    )
    assert limiter.tokens_per_minute == 600
    burst = token_burst(600)
    assert await subject.acquire(int(burst)) == 0.0
    limiter.set_limits(
        requests_per_second=None, tokens_per_minute=1200, now=subject.now(), reason="live"
    )
    subject.assert_wait(await subject.acquire(100), (100 - (burst - int(burst))) / 20)


# -- pauses ---------------------------------------------------------------------------------
async def test_pause_holds_every_acquisition_until_its_deadline(make: Make) -> None:
    """pause_until blocks credit with full buckets; a shorter pause does not shorten it."""
    subject = await make(requests_per_second=10, tokens_per_minute=None)
    start = subject.now()
    subject.limiter.pause_until(start + 3.0, start, "429")
    subject.assert_wait(await subject.acquire(), 3.0)
    assert (await subject.state()).paused_for == pytest.approx(3.0, abs=0.05)
    await subject.advance(1.0)
    subject.assert_wait(await subject.acquire(), 2.0)
    subject.limiter.pause_until(subject.now() + 0.5, subject.now(), "429")
    subject.assert_wait(await subject.acquire(), 2.0)
    assert subject.woken == 0
    await subject.advance(2.0)
    assert await subject.acquire() == 0.0


# -- what the server says -------------------------------------------------------------------
async def test_stated_limits_given_directly_resize_the_limiter(make: Make) -> None:
    """OpenAI-style limits handed to observe_headers are applied as set_limits('headers')."""
    subject = await make(requests_per_second=40, tokens_per_minute=None)
    subject.limiter.observe_headers(
        RateLimitHeaders(
            requests_limit=600, requests_window=60, tokens_limit=10000, tokens_window=60
        ),
        subject.now(),
    )
    assert subject.limiter.requests_per_second == pytest.approx(10)
    assert subject.limiter.tokens_per_minute == pytest.approx(10000)
    assert subject.woken == 1
    assert (await subject.state()).last_change_reason == "headers"
    # The same limits again change nothing.
    same = RateLimitHeaders(requests_limit=600, requests_window=60)
    subject.limiter.observe_headers(same, subject.now())
    assert subject.woken == 1


async def test_nothing_remaining_pauses_until_the_reset(make: Make) -> None:
    """remaining=0 with a reset time and no known rate pauses every dispatch for that long."""
    subject = await make(requests_per_second=None, tokens_per_minute=None)
    subject.limiter.observe_headers(
        RateLimitHeaders(requests_remaining=0, requests_reset=1.5), subject.now()
    )
    await subject.advance(1.0)
    subject.assert_wait(await subject.acquire(), 0.5)
    assert (await subject.state()).last_change_reason == NONE_REMAIN_REASON
    subject.limiter.observe_headers(
        RateLimitHeaders(tokens_remaining=0, tokens_reset=3600.0), subject.now()
    )
    subject.assert_wait(await subject.acquire(), 60.0)  # no window is longer than a minute


async def test_nothing_remaining_with_a_known_rate_empties_the_bucket(make: Make) -> None:
    """remaining=0 under a known rate: the next request one refill step later, not at reset."""
    subject = await make(requests_per_second=10, tokens_per_minute=None)
    subject.limiter.observe_headers(
        RateLimitHeaders(requests_remaining=0, requests_reset=1.5), subject.now()
    )
    subject.assert_wait(await subject.acquire(), 0.1)


async def test_the_remaining_count_lowers_the_level_never_raises_it(make: Make) -> None:
    """The server's count wins when it is lower: only that many go before a wait."""
    subject = await make(requests_per_second=10, tokens_per_minute=None)
    subject.limiter.observe_headers(RateLimitHeaders(requests_remaining=2), subject.now())
    assert await subject.grants(4) == 2
    subject.limiter.observe_headers(RateLimitHeaders(requests_remaining=50), subject.now())
    assert await subject.acquire() > 0.0


async def test_remaining_tokens_and_none_without_a_reset_empty_the_bucket(make: Make) -> None:
    """100 tokens said left: 100 pass; nothing left and no reset: the level drops to zero."""
    subject = await make(requests_per_second=10, tokens_per_minute=600)
    await subject.advance(1.0)
    subject.limiter.observe_headers(RateLimitHeaders(tokens_remaining=100), subject.now())
    assert await subject.acquire(100) == 0.0
    subject.assert_wait(await subject.acquire(10), 1.0)
    subject.limiter.observe_headers(RateLimitHeaders(requests_remaining=0), subject.now())
    subject.assert_wait(await subject.acquire(10), 1.0)  # the tokens still bind
    subject.assert_wait(await subject.acquire(0), 0.1)  # requests alone: one refill at 10/s


# -- construction ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
@pytest.mark.parametrize("dimension", ["requests_per_second", "tokens_per_minute"])
@pytest.mark.parametrize("kind", ["local", "redis"])
def test_invalid_limits_are_refused(kind: str, dimension: str, bad: float) -> None:
    """Zero, negative and non-finite limits raise ValueError (before any connection)."""
    limits: dict[str, float | None] = {
        "requests_per_second": None,
        "tokens_per_minute": None,
        dimension: bad,
    }
    with pytest.raises(ValueError):
        if kind == "local":
            LocalLimiter(**limits)
        else:
            from grok_scheduler.distributed import RedisLimiter

            RedisLimiter(key="never-used", **limits)


def test_only_an_unshared_limiter_measures_acceptance() -> None:
    """LocalLimiter alone spends its credit; a RedisLimiter shares it with other processes."""
    pytest.importorskip("redis.asyncio")
    from grok_scheduler.distributed import RedisLimiter

    assert LocalLimiter(requests_per_second=1, tokens_per_minute=None).measures_acceptance
    assert not RedisLimiter(key="never-used").measures_acceptance
