"""RedisLimiter against a real Redis: the Lua script's rules, shared knowledge, Redis trouble.

Time is Redis's own clock, so a wait is checked against its exact figure less the time the test
has spent talking to Redis (see Stopwatch); nothing here sleeps to test timing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis
from redis_support import (
    ROOT,
    LimiterFactory,
    free_port,
    limiter_factory,
    own_redis,
    require_redis,
    unique_key,
)
from structlog.testing import capture_logs

from grok_scheduler import RateLimitHeaders
from grok_scheduler.distributed import RedisLimiter, limiter_key
from grok_scheduler.distributed._messages import Report

Factory = LimiterFactory


class Stopwatch:
    """Redis time passes while a test talks to it; a wait can be short by at most that much."""

    def __init__(self) -> None:
        self.start = asyncio.get_running_loop().time()

    def low(self, expected: float) -> float:
        """The least a wait expected from a state set up since the start may now be."""
        # Redis's TIME is the wall clock, the loop's the monotonic one: allow them to disagree
        # by a few milliseconds (clock slewing on a busy virtual machine).
        return expected - (asyncio.get_running_loop().time() - self.start) - 0.005


@pytest.fixture
def redis_url() -> str:
    """The shared test server's URL (skips, or fails under CI, when there is none)."""
    return require_redis()


@pytest_asyncio.fixture
async def make(redis_url: str) -> AsyncIterator[Factory]:
    """``make(**options)``: a limiter on this test's own key; all closed and deleted after."""
    async with limiter_factory(redis_url, max_booking=0.0) as factory:
        yield factory


def now() -> float:
    return asyncio.get_running_loop().time()


def stored(url: str, key: str, field: str) -> float:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        value = client.hget(key, field)
    finally:
        client.close()
    assert isinstance(value, str)
    return float(value)


async def rested(limiter: RedisLimiter, url: str, requests: float) -> None:
    """The key as after a quiet second: ``requests`` in the request bucket (a new one is half
    full). Redis's clock cannot be stepped, so the level is written directly."""
    await limiter._send(Report())  # the first call creates the key
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.hset(limiter.key, "rl", repr(requests))
    finally:
        client.close()


async def grants(limiter: RedisLimiter, n: int, tokens: int = 0, priority: int = 2) -> int:
    count = 0
    for _ in range(n):
        if await limiter.acquire(tokens, now(), priority) == 0.0:
            count += 1
    return count


async def test_a_report_is_sent_without_waiting_for_an_acquisition(
    make: Factory, redis_url: str
) -> None:
    """Given-back credit reaches Redis by itself shortly after (flush() waits for it)."""
    limiter = make(tokens_per_minute=600)
    assert await limiter.acquire(500, now()) == 0.0
    before = stored(redis_url, limiter.key, "tl")
    limiter.settle(500, 0, now())
    await limiter.flush()
    assert stored(redis_url, limiter.key, "tl") >= before + 500


# -- expiry ---------------------------------------------------------------------------------
async def test_key_expires_after_last_use_but_not_during_a_pause(
    make: Factory, redis_url: str
) -> None:
    """Every write sets the key's expiry to ttl, extended by any pause still to run."""
    limiter = make(requests_per_second=10, ttl=2.0)
    await limiter.acquire(0, now())
    client = redis.Redis.from_url(redis_url)
    try:
        assert 1500 < client.pttl(limiter.key) <= 2000
        limiter.pause_until(now() + 30.0, now(), "429")
        await limiter.flush()
        assert 31_000 < client.pttl(limiter.key) <= 32_000
    finally:
        client.close()


# -- shared knowledge -----------------------------------------------------------------------
async def test_a_pause_is_seen_by_every_process_and_the_later_one_wins(
    make: Factory,
) -> None:
    """A 429 pause set by one limiter holds back another; a shorter pause does not shorten it."""
    first = make(requests_per_second=10)
    clock = Stopwatch()
    second = make(requests_per_second=10)
    first.pause_until(now() + 5.0, now(), "429")
    await first.flush()
    wait = await second.acquire(0, now())
    assert clock.low(5.0) < wait <= 5.0
    # The pause's end is fixed: what is left of it shrinks by the real time the test takes.
    assert second.state(now()).paused_for > clock.low(5.0)
    second.pause_until(now() + 1.0, now(), "429")
    await second.flush()
    trips = first.round_trips
    assert await first.acquire(0, now()) > clock.low(5.0)  # its own pause: answered without Redis
    assert first.round_trips == trips
    third = make(requests_per_second=10)
    assert await third.acquire(0, now()) > max(1.0, clock.low(5.0))


async def test_limits_set_by_one_process_reach_the_others(make: Factory) -> None:
    """set_limits is shared: the newest one wins, whichever process made it."""
    first = make(requests_per_second=10)
    second = make(requests_per_second=10)
    await second.acquire(0, now())
    first.set_limits(requests_per_second=2, tokens_per_minute=None, now=now(), reason="adaptive")
    await first.flush()
    await second.acquire(0, now())
    assert second.requests_per_second == 2
    assert second.state(now()).last_change_reason == "adaptive"
    second.set_limits(requests_per_second=5, tokens_per_minute=1000, now=now(), reason="manual")
    await second.flush()
    await first.acquire(0, now())
    assert (first.requests_per_second, first.tokens_per_minute) == (5, 1000)


async def test_configured_limits_combine_as_the_lowest(make: Factory, redis_url: str) -> None:
    """10 and 100 rps configured on one key: both run at 10 (issue 12.6, "admitted 100")."""
    slow = make(requests_per_second=10)
    fast = make(requests_per_second=100)
    await fast.acquire(0, now())
    await slow.acquire(0, now())
    await fast.acquire(0, now())
    assert (slow.requests_per_second, fast.requests_per_second) == (10, 10)
    # The burst is 10 rps's, whoever asks: 9 requests, not 90 (plus what 10 rps refilled
    # while a loaded host took its time over the 40 round trips).
    await rested(fast, redis_url, 90.0)
    clock = Stopwatch()
    granted = await grants(fast, 20) + await grants(slow, 20)
    assert 9 <= granted <= 9 + 10 * (asyncio.get_running_loop().time() - clock.start)
    # A shared limit above a process's ceiling does not raise it, for itself or for others.
    fast.set_limits(requests_per_second=100, tokens_per_minute=None, now=now(), reason="adaptive")
    await fast.flush()
    assert fast.requests_per_second == 10
    await slow.acquire(0, now())
    assert slow.requests_per_second == 10


async def test_a_ceiling_goes_with_its_process(make: Factory, redis_url: str) -> None:
    """A closed process's ceiling is withdrawn, a silent one's expires; the others then rise."""
    fast = make(requests_per_second=100)
    closing = make(requests_per_second=10)
    silent = make(requests_per_second=20)
    for limiter in (closing, silent, fast):
        await limiter.acquire(0, now())
    assert fast.requests_per_second == 10
    await closing.aclose()
    await fast.acquire(0, now())
    assert fast.requests_per_second == 20
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:  # the silent process's registration as after its ceiling_ttl (30 s) has passed
        for field, value in client.hgetall(silent.key).items():
            if field.startswith("c:") and value.startswith("20 "):
                client.hset(silent.key, field, "20 0 1")
    finally:
        client.close()
    await fast.acquire(0, now())
    assert fast.requests_per_second == 100


async def test_learned_limits_hold_under_the_ceilings(make: Factory) -> None:
    """Limits learned from headers are shared; a newer configuration does not override them."""
    first = make(requests_per_second=10)
    await first.acquire(0, now())
    second = make(requests_per_second=20)
    await second.acquire(0, now())
    await first.acquire(0, now())
    assert first.requests_per_second == 10
    headers = RateLimitHeaders(requests_limit=180, requests_window=60)
    first.observe_headers(headers, now())
    assert first.requests_per_second == 3
    await first.flush()
    third = make(requests_per_second=50)
    await third.acquire(0, now())
    assert third.requests_per_second == 3
    assert third.state(now()).last_change_reason == "headers"


async def test_one_absurd_answer_costs_the_fleet_one_bucket(make: Factory) -> None:
    """10M tokens settled on 100k tpm: the others wait a minute at most, not 99 (issue 13.4)."""
    first = make(tokens_per_minute=100_000)
    other = make(tokens_per_minute=100_000)
    assert await first.acquire(1000, now()) == 0.0
    first.settle(1000, 10_000_000, now())
    await first.flush()
    burst = 100_000 * (1 - 0.25 / 60)
    wait = await other.acquire(10, now())
    assert 59.0 < wait <= (10 + burst) / (100_000 / 60)


async def test_headers_saying_none_remain_pause_everyone(make: Factory) -> None:
    """remaining=0 with a reset time and no known rate pauses the whole fleet for that long."""
    first = make(requests_per_second=None)
    clock = Stopwatch()
    second = make(requests_per_second=None)
    first.observe_headers(RateLimitHeaders(requests_remaining=0, requests_reset=2.0), now())
    await first.flush()
    wait = await second.acquire(0, now())
    assert clock.low(2.0) < wait <= 2.0


# -- bookings -------------------------------------------------------------------------------
async def test_a_short_wait_books_the_credit_and_needs_only_a_pause_check(
    make: Factory, redis_url: str
) -> None:
    """Denied for a moment, the caller is booked; at the due time one cheap check, and it goes."""
    limiter = make(requests_per_second=10, max_booking=0.5)
    other = make(requests_per_second=10)
    await rested(limiter, redis_url, 9.0)
    clock = Stopwatch()
    assert await grants(limiter, 9) == 9
    start = now()
    wait = await limiter.acquire(0, start)
    assert clock.low(0.1) < wait <= 0.1
    trips = limiter.round_trips
    assert await limiter.acquire(0, start + wait / 2) == pytest.approx(wait / 2)
    assert limiter.round_trips == trips  # before it is due: answered without Redis
    assert await limiter.acquire(0, start + wait) == 0.0
    assert limiter.round_trips == trips + 1  # the pause check (issue 13.6), not a new booking
    # The booked credit is spent in Redis: the next caller queues behind it.
    wait = await other.acquire(0, now())  # the round trip must not count against the bound
    assert clock.low(0.2) < wait <= 0.2


async def test_a_booking_honours_a_pause_set_after_it(make: Factory, redis_url: str) -> None:
    """Booked, then another process hits a 429: the booking waits for the pause (issue 13.6)."""
    booked = make(requests_per_second=10, max_booking=0.5)
    other = make(requests_per_second=10)
    await rested(booked, redis_url, 9.0)
    assert await grants(booked, 9) == 9
    start = now()
    wait = await booked.acquire(0, start)
    assert 0.0 < wait <= 0.1
    other.pause_until(now() + 5.0, now(), "429")
    await other.flush()
    deferred = await booked.acquire(0, start + wait)
    assert 4.8 < deferred <= 5.0
    # Still booked (the credit stays set aside): due at the pause's end, without asking again.
    trips = booked.round_trips
    assert await booked.acquire(0, start + wait + 1.0) == pytest.approx(deferred - 1.0)
    assert booked.round_trips == trips


async def test_an_unused_booking_goes_back(make: Factory, redis_url: str) -> None:
    """A booking nobody used (the job went away) is returned when the limiter closes."""
    limiter = make(requests_per_second=10, max_booking=0.5)
    await rested(limiter, redis_url, 9.0)
    assert await grants(limiter, 9) == 9
    assert await limiter.acquire(0, now()) > 0.0
    state = limiter.state(now())
    assert state.requests_available is not None
    await limiter.aclose()
    assert stored(redis_url, limiter.key, "rl") >= state.requests_available + 1.0


async def test_a_booking_too_small_for_the_job_is_exchanged(make: Factory, redis_url: str) -> None:
    """Booked for 10 tokens but now first is a 500-token job: it asks Redis afresh."""
    limiter = make(requests_per_second=10, tokens_per_minute=6000, max_booking=0.5)
    await rested(limiter, redis_url, 9.0)
    assert await grants(limiter, 9, tokens=10) == 9
    start = now()
    wait = await limiter.acquire(10, start)
    trips = limiter.round_trips
    # Redis's clock has hardly moved: with the booking handed back it is next in line (about
    # 0.1 s), without it it would queue behind its own booking (about 0.2 s).
    assert await limiter.acquire(500, start + wait) < 0.15
    assert limiter.round_trips == trips + 1


# -- priorities across processes ------------------------------------------------------------
async def test_an_urgent_waiter_keeps_the_next_credit_from_less_urgent_work(
    make: Factory, redis_url: str
) -> None:
    """Once a HIGH caller waits, LOW callers elsewhere must leave it the bucket's last part."""
    urgent = make(requests_per_second=10, reserve_share=0.25)
    flood = make(requests_per_second=10, reserve_share=0.25)
    await rested(flood, redis_url, 9.0)
    clock = Stopwatch()
    assert await grants(flood, 9, priority=3) == 9
    low_alone = await flood.acquire(0, now(), 3)
    assert clock.low(0.1) < low_alone <= 0.1
    high = await urgent.acquire(0, now(), 1)
    assert clock.low(0.1) < high <= 0.1
    # One request plus a quarter of the 9-request bucket must accumulate first.
    low = await flood.acquire(0, now(), 3)
    assert clock.low(0.325) < low <= 0.325
    # NORMAL work is held back the same way (not the 0.1 s an unheld caller waits); urgent
    # work is not. Bounded by the stopwatch: a loaded host spends Redis time between calls.
    assert clock.low(0.325) < await flood.acquire(0, now(), 2) <= 0.325
    other_urgent = make(requests_per_second=10)
    assert await other_urgent.acquire(0, now(), 0) <= 0.1


# -- the fleet's acceptance log -------------------------------------------------------------
async def test_every_process_sees_the_fleets_sends_and_rejections(make: Factory) -> None:
    """Two limiters on one key record sends and 429s; each one's query sees the sum."""
    first = make(requests_per_second=10)
    second = make(requests_per_second=10)
    start = now()
    assert first.fleet_acceptance(start - 1.0, start + 1.0) is None  # nothing exchanged yet
    for _ in range(3):
        first.record_sent(start)
    for _ in range(2):
        second.record_sent(start)
    second.record_rejected(start, "requests")
    first.record_rejected(start, "tokens")
    await first.flush()
    await second.flush()
    await first.flush()  # fetches what the second one sent
    end = now() + 1.0
    assert first.fleet_acceptance(start - 1.0, end) == (5, 2)
    assert second.fleet_acceptance(start - 1.0, end) == (5, 2)
    assert first.fleet_acceptance(start - 1.0, end, "tokens") == (5, 1)
    # Sent before the window: not counted.
    assert first.fleet_acceptance(start + 0.5, end) == (0, 0)


async def test_the_acceptance_log_costs_one_round_trip_per_slot(make: Factory) -> None:
    """A hundred sends in one 0.25 s slot start one exchange with Redis, not a hundred."""
    limiter = make(requests_per_second=10)
    at = now()
    trips = limiter.round_trips
    for _ in range(100):
        limiter.record_sent(at)
    await limiter.flush()
    assert limiter.round_trips - trips <= 2  # the one started by the first send, and flush()'s
    assert limiter.fleet_acceptance(at - 1.0, at + 1.0) == (100, 0)


async def test_an_unused_acceptance_log_costs_nothing(make: Factory) -> None:
    """A process that never records nor asks makes no acceptance round trips."""
    limiter = make(requests_per_second=10)
    await limiter.acquire(0, now())
    await limiter.flush()
    assert limiter.round_trips == 1


# -- Redis trouble --------------------------------------------------------------------------
async def test_a_lost_key_starts_empty_not_full() -> None:
    """FLUSHDB mid-run: the bucket is not seeded full again (issue 13.5)."""
    with own_redis() as server:
        limiter = RedisLimiter(url=server.url, key=unique_key(), requests_per_second=10)
        try:
            assert await limiter.acquire(0, now()) == 0.0  # a new key: half full
            redis.Redis.from_url(server.url).flushdb()
            # This process talked to the key a moment ago: the key was lost, the fleet's
            # sends were not. One refill at 10 rps away, not a burst of 9.
            assert 0.09 < await limiter.acquire(0, now()) <= 0.1
        finally:
            await limiter.aclose()


async def test_a_lost_key_keeps_the_last_known_pause() -> None:
    """FLUSHDB during another process's 30 s pause: the pause holds, for newcomers too."""
    with own_redis() as server:
        key = unique_key()
        pauser = RedisLimiter(url=server.url, key=key, requests_per_second=10)
        other = RedisLimiter(url=server.url, key=key, requests_per_second=10)
        try:
            pauser.pause_until(now() + 30.0, now(), "429")
            await pauser.flush()
            assert await other.acquire(0, now()) > 29.0  # it learns the pause from Redis
            redis.Redis.from_url(server.url).flushdb()
            assert await other.acquire(0, now()) > 29.0  # and asserts it again
            newcomer = RedisLimiter(url=server.url, key=key, requests_per_second=10)
            try:
                assert await newcomer.acquire(0, now()) > 29.0
            finally:
                await newcomer.aclose()
        finally:
            await pauser.aclose()
            await other.aclose()


async def test_unreachable_redis_falls_back_to_a_local_share() -> None:
    """No Redis: a local limiter at a quarter of the limit takes over (empty), logged once."""
    limiter = RedisLimiter(
        url=f"redis://127.0.0.1:{free_port()}/0", key=unique_key(), requests_per_second=40
    )
    try:
        with capture_logs() as logs:
            # Nothing is known about what is left, so it starts empty: one refill at 10 rps.
            assert await limiter.acquire(0, now()) == pytest.approx(0.1)
        assert not limiter.using_redis
        events = [entry["event"] for entry in logs]
        assert events == ["grok_scheduler.redis_unavailable"]
        assert logs[0]["fallback"] == "local"
    finally:
        await limiter.aclose()


async def test_pause_policy_admits_nothing_while_redis_is_away() -> None:
    """fallback="pause": every acquisition waits for the next reconnection attempt."""
    limiter = RedisLimiter(
        url=f"redis://127.0.0.1:{free_port()}/0",
        key=unique_key(),
        requests_per_second=40,
        fallback="pause",
        retry_interval=0.5,
    )
    try:
        assert await grants(limiter, 3) == 0
        assert await limiter.acquire(0, now()) == 0.5
    finally:
        await limiter.aclose()


async def test_returns_to_redis_when_it_is_back() -> None:
    """Redis stopped: local fallback; started again: restored, logged, and used again."""
    with own_redis() as server:
        limiter = RedisLimiter(
            url=server.url, key=unique_key(), requests_per_second=40, retry_interval=0.1
        )
        restored = asyncio.Event()
        limiter.set_listener(restored.set)
        try:
            with capture_logs() as logs:
                assert await limiter.acquire(0, now()) == 0.0
                server.stop()
                assert await limiter.acquire(0, now()) == 0.0  # the local fallback
                assert not limiter.using_redis
                server.start()
                async with asyncio.timeout(5.0):
                    await restored.wait()
                trips = limiter.round_trips
                # The restarted server lost the key; this process kept sending meanwhile, so
                # the fresh bucket starts empty: one refill (1/40 s) away.
                assert 0.0 < await limiter.acquire(0, now()) <= 0.025
            assert limiter.using_redis
            assert limiter.round_trips == trips + 1
            events = [entry["event"] for entry in logs]
            assert events == ["grok_scheduler.redis_unavailable", "grok_scheduler.redis_restored"]
        finally:
            await limiter.aclose()


async def test_limits_learned_while_redis_was_away_reach_it_when_it_is_back() -> None:
    """A set_limits made during an outage is stored in Redis once it answers again."""
    with own_redis() as server:
        limiter = RedisLimiter(
            url=server.url, key=unique_key(), requests_per_second=40, retry_interval=0.1
        )
        try:
            assert await limiter.acquire(0, now()) == 0.0
            server.stop()
            await limiter.acquire(0, now())
            limiter.set_limits(
                requests_per_second=7, tokens_per_minute=None, now=now(), reason="adaptive"
            )
            restored = asyncio.Event()
            limiter.set_listener(restored.set)
            server.start()
            async with asyncio.timeout(5.0):
                await restored.wait()
            await limiter.flush()
            assert stored(server.url, limiter.key, "rps") == 7
        finally:
            await limiter.aclose()


# -- construction ---------------------------------------------------------------------------
def test_limiter_key_is_a_hash_tagged_digest_of_key_and_model() -> None:
    """The derived key never contains the API key; same key and model, same Redis key."""
    key = limiter_key("xai-SECRET123", "grok-4")
    assert "SECRET" not in key
    assert key == limiter_key("xai-SECRET123", "grok-4")
    assert key != limiter_key("xai-SECRET123", "grok-3")
    assert key.startswith("grok-scheduler:{") and key.endswith("}") and len(key) == 33


def test_from_url_uses_the_derived_key_and_plain_keys_get_a_hash_tag() -> None:
    """from_url keys by API key and model; a plain key is wrapped in a Cluster hash tag."""
    derived = RedisLimiter.from_url(
        "redis://127.0.0.1:6379/0", api_key="xai-k", model="m", requests_per_second=5
    )
    assert derived.key == limiter_key("xai-k", "m")
    assert derived.requests_per_second == 5
    assert RedisLimiter(key="team-a:grok-4").key == "grok-scheduler:{team-a:grok-4}"


def test_repr_hides_the_redis_password() -> None:
    """A password in the URL never shows in the limiter's repr."""
    limiter = RedisLimiter(url="redis://user:hunter2@127.0.0.1:6379/0", key="k")
    assert "hunter2" not in repr(limiter)
    assert "127.0.0.1:6379" in repr(limiter)


def test_missing_redis_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the redis package, creating a limiter says which extra to install."""
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install grok-scheduler\[redis\]"):
        RedisLimiter(key="k")


def test_the_package_imports_without_the_redis_client() -> None:
    """``import grok_scheduler.distributed`` works where redis is not installed."""
    code = "import sys; sys.modules['redis'] = None; import grok_scheduler.distributed"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=30)
