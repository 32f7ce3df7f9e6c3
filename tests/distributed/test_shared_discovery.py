"""Shared discovery as one controller: how fleet changes combine, who probes, how fresh counts are.

The rules run in the Lua scripts against a real Redis (skipped without one, required under CI);
the watermark arithmetic and the meter's use of it run in virtual time without Redis. Nothing
here asserts wall-clock timing: where Redis's clock moves, bounds are taken from a stopwatch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from redis_support import LimiterFactory, delete_keys, limiter_factory, require_redis, unique_key
from test_acceptance_log import REDIS_AHEAD, FakeRedis

from grok_scheduler._limits._acceptance import AcceptanceLog as SendLog
from grok_scheduler._limits._adaptive import AdaptivePolicy, RateController
from grok_scheduler._limits._episode import Meter
from grok_scheduler._limits._local import LocalLimiter
from grok_scheduler.cli._options import RunOptions
from grok_scheduler.cli._setup import make_limiter
from grok_scheduler.distributed import RedisLimiter
from grok_scheduler.distributed._acceptance import LIVE_SECONDS, SLOT_SECONDS, AcceptanceLog
from grok_scheduler.distributed._messages import PROBING_REASON, Report, change_of

Factory = LimiterFactory

MEASURED = "429 on requests: measured"


@pytest_asyncio.fixture
async def make() -> AsyncIterator[Factory]:
    """``make(**options)``: a limiter on this test's own key; all closed and deleted after."""
    async with limiter_factory(require_redis()) as factory:
        yield factory


def now() -> float:
    return asyncio.get_running_loop().time()


async def change(limiter: RedisLimiter, rps: float, reason: str) -> None:
    limiter.set_limits(requests_per_second=rps, tokens_per_minute=None, now=now(), reason=reason)
    await limiter.flush()


async def shared_rate(limiter: RedisLimiter) -> float | None:
    """The rate in force as Redis says it now."""
    await limiter._send(Report())
    return limiter.requests_per_second


# -- how changes combine ---------------------------------------------------------------------
async def test_a_cut_never_raises_the_shared_rate(make: Factory) -> None:
    """A process measuring a little later must not undo a deeper cut made meanwhile."""
    first, second = make(), make()
    await change(first, 30.0, MEASURED)
    await change(second, 40.0, MEASURED)  # its own rate was higher: still a cut for it
    assert await shared_rate(first) == 30.0
    assert await shared_rate(second) == 30.0
    await change(second, 25.0, "first 429")  # a deeper cut applies, from any process
    assert await shared_rate(first) == 25.0
    # A stated limit is evidence, not a cut: it applies as given, up or down.
    await change(second, 50.0, "429 body")
    assert await shared_rate(first) == 50.0


async def test_only_the_process_whose_cut_is_in_force_probes_up(make: Factory) -> None:
    """Four processes would probe four times as fast as one: only the leader's probe counts."""
    leader, other = make(), make()
    await change(leader, 30.0, MEASURED)
    await change(other, 35.0, MEASURED)  # no effect (30 holds): it does not take the lead
    await change(other, 31.0, PROBING_REASON)
    assert await shared_rate(leader) == 30.0
    await change(leader, 31.0, PROBING_REASON)
    assert await shared_rate(other) == 31.0
    # The other one now knows who leads: its probe is not even sent (no round trip).
    trips = other.round_trips
    await change(other, 33.0, PROBING_REASON)
    assert other.round_trips == trips
    assert await shared_rate(leader) == 31.0


async def test_a_lapsed_lease_lets_another_process_probe(make: Factory) -> None:
    """A leader gone quiet (no change for ``probe_lease``) hands the probing to whoever asks."""
    leader, other = make(), make()
    await change(leader, 30.0, MEASURED)
    client = redis.Redis.from_url(require_redis(), decode_responses=True)
    try:  # the lease as after probe_lease (5 s) without a word from the leader
        client.hset(leader.key, "pe", "0")
    finally:
        client.close()
    await change(other, 31.0, PROBING_REASON)
    assert await shared_rate(leader) == 31.0
    await change(leader, 32.0, PROBING_REASON)  # the other one leads now
    assert await shared_rate(other) == 31.0


async def test_a_departing_leader_leaves_the_probing_to_the_others(make: Factory) -> None:
    leader, other = make(), make()
    await change(leader, 30.0, MEASURED)
    await leader.aclose()
    await change(other, 31.0, PROBING_REASON)
    assert await shared_rate(other) == 31.0


async def test_configured_ceilings_hold_over_cuts_and_probes(make: Factory) -> None:
    """Issue 12: no process raises another's ceiling, whatever its controller proposes."""
    low, high = make(requests_per_second=10), make(requests_per_second=100)
    await low.acquire(0, now())
    await change(high, 80.0, MEASURED)
    assert await shared_rate(high) == 10.0
    await change(high, 90.0, PROBING_REASON)
    assert await shared_rate(high) == 10.0
    assert await shared_rate(low) == 10.0


async def test_a_limit_learned_from_a_429_starts_with_an_empty_bucket(make: Factory) -> None:
    """The server just said its bucket is empty: the first estimate must not spend half of one.

    A limit from elsewhere (a header) starts half full, as a new local one does.
    """
    learned = make()
    started = now()
    await change(learned, 0.5, "first 429")
    wait = await learned.acquire(0, now())
    # Empty at 0.5 rps: one request in 2 s, less what Redis's clock moved since.
    assert 2.0 - (now() - started) - 0.01 < wait <= 2.0
    stated = make(key=unique_key())
    await change(stated, 0.5, "headers")
    assert await stated.acquire(0, now()) <= 1.0  # half of the one-request bucket is there


def test_the_controller_gives_the_reasons_the_script_combines() -> None:
    """The controller's cuts and probes are told apart by their reasons (``_messages.py``):
    a renamed reason would make every probe a change that anyone may make."""
    reasons: list[str] = []

    class Recording(LocalLimiter):
        def set_limits(self, **kwargs: Any) -> None:
            reasons.append(kwargs["reason"])
            super().set_limits(**kwargs)

    limiter = Recording(requests_per_second=50, tokens_per_minute=None, now=0.0)
    controller = RateController(
        AdaptivePolicy(), limiter, requests_per_second=50, tokens_per_minute=None, now=0.0
    )
    controller.on_rate_limited("requests", 1.0)
    for step in range(100):  # the gate keeps waiting for credit: recovery, then probing
        at = 1.0 + 0.1 * step
        controller.on_limited(at)
        controller.tick(at)
    assert reasons[0] == "429 on requests"
    assert {change_of(reason) for reason in reasons} == {"cut", "probe"}


# -- how fresh the fleet's counts are (virtual time, no Redis) -------------------------------
def exchange(log: AcceptanceLog, redis_: FakeRedis, at: float) -> None:
    args, _ = log.batch(at)
    log.absorb(redis_.flush(args, at + REDIS_AHEAD), at, at + 0.001)


def test_the_fleet_is_behind_by_its_oldest_live_watermark() -> None:
    redis_ = FakeRedis()
    mine, other, gone = AcceptanceLog("mine"), AcceptanceLog("other"), AcceptanceLog("gone")
    assert mine.report_lag(10.0) is None  # nothing fetched yet: unknown
    exchange(gone, redis_, 10.0 - LIVE_SECONDS - 1.0)  # silent since: not sending
    exchange(other, redis_, 10.0)
    exchange(mine, redis_, 10.5)
    # The other process's sends after 10.0 may be missing; a slot more for the slot's width.
    assert mine.report_lag(10.5) == pytest.approx(0.5 + SLOT_SECONDS, abs=0.01)
    assert mine.report_lag(11.0) == pytest.approx(1.0 + SLOT_SECONDS, abs=0.01)
    exchange(other, redis_, 11.0)
    exchange(mine, redis_, 11.0)
    assert mine.report_lag(11.0) == pytest.approx(SLOT_SECONDS, abs=0.01)


def test_alone_the_fleet_is_as_fresh_as_the_last_fetch() -> None:
    redis_ = FakeRedis()
    mine = AcceptanceLog("mine")
    exchange(mine, redis_, 20.0)
    assert mine.report_lag(20.0) == pytest.approx(SLOT_SECONDS, abs=0.01)
    assert mine.report_lag(21.0) == pytest.approx(1.0 + SLOT_SECONDS, abs=0.01)


class Fleet:
    """A fleet log that only says how far behind it is."""

    def __init__(self, lag: float | None) -> None:
        self.lag = lag

    def record_sent(self, now: float) -> None: ...

    def record_rejected(self, sent_at: float, dimension: str) -> None: ...

    def fleet_acceptance(self, start: float, end: float) -> tuple[int, int] | None:
        return None

    def report_lag(self) -> float | None:
        return self.lag


def test_the_meter_waits_as_long_as_the_fleet_log_says() -> None:
    """Measured windows end where every process's counts are in, not 2.5 s back by rule."""
    log = SendLog()
    horizon = log.horizon()
    assert Meter(log, Fleet(0.4), shared=True).lag() == pytest.approx(horizon + 0.4)
    assert Meter(log, Fleet(None), shared=True).lag() == pytest.approx(horizon + 2.5)
    assert Meter(log, None, shared=False).lag() == pytest.approx(horizon)


# -- the same, through Redis -------------------------------------------------------------------
async def test_fleet_counts_are_as_fresh_as_the_slowest_live_process(make: Factory) -> None:
    first, second = make(), make()
    start = now()
    first.record_sent(start)
    second.record_sent(start)
    await second.flush()
    since_second = now()
    await first.flush()
    lag = first.report_lag()
    assert lag is not None
    # Behind by what passed since the second one's flush (and its round trip), plus a slot.
    assert SLOT_SECONDS <= lag <= now() - start + SLOT_SECONDS + 0.01
    assert lag >= now() - since_second + SLOT_SECONDS - 0.05


async def test_a_fleet_pause_makes_every_process_count_every_slot(make: Factory) -> None:
    """The process that saw the 429 measures the fleet: the others must report quickly."""
    quiet, hit = make(), make()
    quiet.record_sent(now())
    await quiet.flush()
    assert quiet._acceptance is not None and not quiet._acceptance.hot(now())
    hit.pause_until(now() + 5.0, now(), "429")
    await hit.flush()
    await quiet.acquire(0, now())  # the answer says the fleet is paused
    assert quiet._acceptance.hot(now())


async def test_sends_of_the_newest_slot_are_fetched_at_once(make: Factory) -> None:
    """A count is kept at its slot's middle, which can lie ahead of Redis's now: the fetch
    reaches that far (it stopped at now's slot, and the newest sends went missing)."""
    limiter = make()
    # Early in a slot of the caller's clock, its middle is ahead of now.
    await asyncio.sleep(SLOT_SECONDS - now() % SLOT_SECONDS + 0.005)
    at = now()
    for _ in range(4):
        limiter.record_sent(at)
    await limiter.flush()
    assert limiter.fleet_acceptance(at - 1.0, at + 1.0) == (4, 0)


async def test_cli_runs_with_one_url_key_and_model_share_one_set_of_limits() -> None:
    """``grok-scheduler run --redis-url URL`` in several processes: no other flag needed."""
    url = require_redis()

    def limiter_of(api_key: str, model: str, rps: float | None = None) -> RedisLimiter:
        options = RunOptions(
            input="-",
            output=Path("out.jsonl"),
            api_key=api_key,
            redis_url=url,
            requests_per_second=rps,
        )
        limiter: RedisLimiter = make_limiter(options)(model)
        return limiter

    first, second = limiter_of("xai-a", "grok-4", rps=10), limiter_of("xai-a", "grok-4")
    other_model, other_key = limiter_of("xai-a", "grok-3-mini"), limiter_of("xai-b", "grok-4")
    try:
        assert first.key == second.key
        assert len({first.key, other_model.key, other_key.key}) == 3
        await first.acquire(0, now())
        await second.acquire(0, now())
        assert second.requests_per_second == 10  # the first one's ceiling, shared
    finally:
        for limiter in (first, second, other_model, other_key):
            await limiter.aclose()
        delete_keys(url, first.key, other_model.key, other_key.key)
