"""A blind start against a high limit (500 and 1,000 rps), in virtual time, default policies.

Every second the first-contact ramp spends below the limit while the server's bucket is full is
a second of the limit lost. Doubling every 0.25 s from 4/s, the ramp sent its first 300 calls
in about 2 s at any limit above that (1.20-1.23 x ideal over an 8 s run at 500-1,000 rps).
Paced as well by what it sent, the ramp also runs at a multiple of what the server took per
second so far (``_limits/_ramp.py``), and the same calls leave in about 1.2 s. Small worlds: the run
is the start alone (300 calls fit within the server's burst).
"""

from __future__ import annotations

import asyncio
import math

import pytest
from worlds import World, make_world_scheduler

from grok_scheduler import FakeClock
from grok_scheduler._limits._ramp import FirstContactRamp
from grok_scheduler.simulator import SimulatorConfig

JOBS = 300
LATENCY = 0.05


@pytest.mark.parametrize("rps", [500.0, 1000.0])
async def test_a_blind_start_at_a_high_limit_sends_its_first_calls_quickly(rps: float) -> None:
    """Nothing given or stated: 300 calls of 50 ms are done within 1.4 s (time's ramp: ~2 s)."""
    clock = FakeClock()
    config = SimulatorConfig(requests_per_second=rps, latency=LATENCY, latency_dist="fixed")
    world = World(config, clock)
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    assert all(f.exception() is None for f in futures)
    assert world.makespan <= 1.4, f"{JOBS} calls took {world.makespan:.2f} s"
    assert world.share_429 <= 0.02, f"{world.share_429:.1%} answered 429"


def _seconds_to_reach(rate: float, *, paced: bool) -> float:
    """Virtual seconds until the ramp runs at ``rate``, for a caller that sends whenever the
    ramp lets it (``paced``: the ramp is told of each chance to pace by what it sent)."""
    ramp, now = FirstContactRamp(now=0.0), 0.0
    while ramp.rate(now) < rate and now < 10.0:
        if paced:
            ramp.pace_by_taken(now)
        wait = ramp.delay(now)
        if wait > 0.0:
            now += min(wait, 0.01)
            continue
        ramp.take(now)
    return now


@pytest.mark.parametrize("rate", [500.0, 1000.0])
def test_the_ramp_is_paced_by_what_it_sent(rate: float) -> None:
    """Paced by the calls it sent, the ramp meets a high rate in about a second, where time's
    doubling alone takes two."""
    by_time = 0.25 * math.log2(rate / 4.0)
    assert _seconds_to_reach(rate, paced=False) == pytest.approx(by_time, abs=0.01)
    assert _seconds_to_reach(rate, paced=True) <= 1.3


def test_a_429_stops_the_pace() -> None:
    """After a 429 the ramp holds half its rate for the quiet period, whatever it sent."""
    ramp = FirstContactRamp(now=0.0)
    for i in range(200):
        ramp.take(0.01 * i)
    ramp.on_rate_limited(2.0)
    held = ramp.rate(2.0)
    ramp.pace_by_taken(2.5)
    assert ramp.rate(2.5) == pytest.approx(held)


@pytest.mark.parametrize("later", [10.0, 30.0])
def test_a_ramp_grown_to_its_cap_keeps_refilling_at_the_cap(later: float) -> None:
    """Past the cap (1e5 calls/s, reached after ~3.3 s of doubling) the ramp refills at the cap.

    Integrating the exponential past the cap added nothing once both ends were capped: the
    ramp's credit never came back, and a blind lane still on it stopped sending for good (1,000
    rps, 1 s calls, 20,000 jobs: 7,129 answered, then the gate re-armed 10 us waits forever).
    """
    ramp = FirstContactRamp(now=0.0)
    now = 0.0
    while ramp.delay(now) == 0.0:  # spend the opening credit
        ramp.take(now)
    now, sent = later, 0
    for _ in range(20_000):  # past the 5,000 calls of credit banked at the cap
        wait = ramp.delay(now)
        if wait == 0.0:
            ramp.take(now)
            sent += 1
        else:
            now += wait
    assert sent >= 12_000, f"{sent} calls in 20,000 asks"
    assert now - later <= sent / 1e5 + 1e-3
