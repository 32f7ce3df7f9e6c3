"""The first contact with a server whose limit is unknown, or configured too high, in virtual time.

A run that starts blind learns the limit from its first 429, and every call that leaves before
that 429 comes back is refused too. Real 429s come back in tens to hundreds of milliseconds
while answers take seconds, so these worlds answer a 429 after ``TURNAROUND`` (the simulator
itself refuses in zero time, which hides the overshoot). Sending a whole pool at once paid
20-60 429s here; the first-contact ramp pays a handful at any answer latency.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest
from worlds import Sent, World, ideal_makespan, make_world_scheduler

from grok_scheduler import FakeClock, TransportResponse
from grok_scheduler._limits._ramp import FirstContactRamp
from grok_scheduler.simulator import SimulatorConfig

LIMIT = 10.0
JOBS = 300
TURNAROUND = 0.05
LATENCIES = pytest.mark.parametrize("latency", [0.05, 1.0, 5.0])


class _SlowRefusals(World):
    """A world whose 429s come back after ``TURNAROUND``, as real ones do."""

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        response = await super().__call__(path, body)
        if response.status == 429:
            index = len(self.sent) - 1  # this call's record: others append while it sleeps
            await self.clock.sleep(TURNAROUND)
            record = self.sent[index]
            self.sent[index] = Sent(record.at, self.clock.now(), record.model, 429, record.refused)
        return response


async def _run(latency: float, *, body: str, given: float | None) -> World:
    clock = FakeClock()
    config = SimulatorConfig(
        requests_per_second=LIMIT,
        latency=latency,
        latency_dist="fixed",
        rate_limit_body=body,  # type: ignore[arg-type]
        seed=1,
    )
    world = _SlowRefusals(config, clock)
    async with make_world_scheduler(
        clock, world, requests_per_second=given, max_concurrency=None, rng=random.Random(1)
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    return world


def _refused_before_first_evidence(world: World) -> int:
    """429s for calls sent before the first 429 came back (the blind overshoot)."""
    refusals = [s for s in world.sent if s.status == 429]
    if not refusals:
        return 0
    evidence = min(s.done for s in refusals)
    return sum(s.at < evidence for s in refusals)


@LATENCIES
@pytest.mark.parametrize(
    ("body", "most_429s", "most_ratio"),
    [
        # Plain 429s: the issue allows 7% when nothing is given or stated.
        ("plain", 0.05, 1.20),
        # xAI's 429 states the limit: the blind start ends at its first 429.
        ("xai", 0.02, 1.05),
    ],
    ids=["plain-429s", "limit-stating-body"],
)
async def test_a_blind_start_pays_a_handful_of_429s(
    latency: float, body: str, most_429s: float, most_ratio: float
) -> None:
    """No limit given: at most 4 refused before the first 429 is back, few in all."""
    world = await _run(latency, body=body, given=None)
    assert _refused_before_first_evidence(world) <= 4
    assert world.share_429 <= most_429s, f"{world.share_429:.1%} answered 429"
    ratio = world.makespan / ideal_makespan(world.config, JOBS, latency=latency)
    assert ratio <= most_ratio, f"makespan {ratio:.3f} x ideal"


@LATENCIES
async def test_a_limit_configured_twice_too_high_is_cut_at_its_first_429(latency: float) -> None:
    """Told 20 rps against 10: the first 429 cuts to the rate it implies, no second burst."""
    world = await _run(latency, body="plain", given=2 * LIMIT)
    refusals = sorted(s.at for s in world.sent if s.status == 429)
    assert refusals, "a limit twice too high must meet a 429"
    first_second = [t for t in refusals if t < refusals[0] + 1.0]
    assert len(first_second) <= 2, refusals
    assert world.share_429 <= 0.02, f"{world.share_429:.1%} answered 429"


def test_the_ramp_starts_small_and_doubles_with_time() -> None:
    """One call at once, then 4/s doubling every 0.25 s: 16/s half a second in."""
    ramp = FirstContactRamp(now=0.0)
    assert ramp.delay(0.0) == 0.0
    ramp.take(0.0)
    assert ramp.delay(0.0) == pytest.approx(0.25 * math.log2(1 + math.log(2)))
    assert ramp.rate(0.5) == pytest.approx(16.0)
    sent, now = 0, 0.0
    while now < 1.0:  # a caller that goes whenever the ramp lets it
        wait = ramp.delay(now)
        if wait > 0.0:
            now += wait
            continue
        ramp.take(now)
        sent += 1
    # After the opening call: the integral of 4 x 2^(4t) over a second.
    assert sent == pytest.approx(4 * 0.25 / math.log(2) * 15, abs=1.5)


def test_a_429_halves_the_ramp_and_holds_it_for_a_quiet_period() -> None:
    """A 429 while nothing is known: half the rate, no growth for two seconds, then doubling."""
    ramp = FirstContactRamp(now=0.0)
    ramp.on_rate_limited(1.0)  # rate 64/s then
    assert ramp.rate(1.0) == pytest.approx(32.0)
    assert ramp.rate(2.9) == pytest.approx(32.0)
    assert ramp.rate(3.25) == pytest.approx(64.0)
    ramp.on_rate_limited(1.0)  # the same 429 told twice changes nothing
    assert ramp.rate(2.0) == pytest.approx(32.0)
    ramp.restart(5.0)
    assert (ramp.rate(5.0), ramp.delay(5.0)) == (4.0, 0.0)
