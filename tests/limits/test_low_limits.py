"""Rate control at the low limits of small tiers (1 and 2 requests a second), nothing stated.

Virtual time, default policies, no ``max_concurrency``, plain 429s without body or headers. A
controller that probes above a limit it found on a clock (every ~6 s) refuses a fixed number of
calls per minute: 1.4% of them at 10 rps, but 14-20% at 1 rps, and each refused probe cut the
rate by 15-50% (ok rate 0.7 of a 1 rps limit). Probing every ~50 calls and returning to a rate
that held keeps both the refusals and the loss small at any limit (``_limits/_probe.py``).
"""

from __future__ import annotations

import asyncio

import pytest
from worlds import World, ideal_makespan, make_world_scheduler

from grok_scheduler import FakeClock
from grok_scheduler._limits._episode import DimensionState
from grok_scheduler._limits._probe import hold_seconds, return_rate
from grok_scheduler.simulator import LimitChange, SimulatorConfig

LIMITS = [1.0, 2.0]
LATENCIES = [0.05, 1.0, 5.0]
DISCOVERY = 30.0  # seconds: the first contact, the first estimate and the first probe


async def _run(config: SimulatorConfig, jobs: int) -> World:
    clock = FakeClock()
    world = World(config, clock)
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    return world


@pytest.mark.parametrize("latency", LATENCIES)
@pytest.mark.parametrize("rps", LIMITS)
async def test_a_low_limit_is_held_just_under_it(rps: float, latency: float) -> None:
    """Once found, a 1-2 rps limit is run at >= 93% with <= 4% of the calls refused."""
    config = SimulatorConfig(requests_per_second=rps, latency=latency)
    jobs = int(150 * rps)
    world = await _run(config, jobs)
    ratio = world.makespan / ideal_makespan(config, jobs)
    assert ratio <= 1.10, f"makespan {ratio:.3f} x ideal"
    start = min(s.at for s in world.sent)
    steady = [s for s in world.sent if s.at >= start + DISCOVERY]
    refused = sum(s.status == 429 for s in steady) / len(steady)
    assert refused <= 0.04, f"{refused:.1%} of the calls after discovery refused"
    taken = [s.at for s in steady if s.status == 200]
    taken_rate = (len(taken) - 1) / (max(taken) - min(taken))
    assert taken_rate >= 0.93 * rps, f"{taken_rate:.3f} taken per second at a {rps} rps limit"


@pytest.mark.parametrize("latency", [0.05, 1.0])
@pytest.mark.parametrize("rps", LIMITS)
async def test_a_low_limit_that_doubles_is_found_within_tens_of_seconds(
    rps: float, latency: float
) -> None:
    """Probing every ~50 calls still finds a limit that doubled within about forty seconds.

    The worst case at 1 rps: the change comes just as a 30 s hold began, then the probe climbs
    gently for 5% and steeply after."""
    change = 60.0
    config = SimulatorConfig(
        requests_per_second=rps,
        latency=latency,
        limit_changes=(LimitChange(after=change, factor=2.0),),
    )
    world = await _run(config, int(rps * change + 2 * rps * 90))
    start = min(s.at for s in world.sent)
    window = (start + change + 40.0, start + change + 55.0)
    taken = sum(s.status == 200 and window[0] <= s.at < window[1] for s in world.sent)
    assert taken >= 0.85 * 2 * rps * (window[1] - window[0])


def test_the_hold_is_counted_in_calls_up_to_half_a_minute() -> None:
    """Fifty calls' worth of holding between probes, but never longer than 30 s."""
    assert hold_seconds(10.0) == pytest.approx(5.0)
    assert hold_seconds(2.0) == pytest.approx(25.0)
    assert hold_seconds(1.0) == pytest.approx(30.0)
    assert hold_seconds(None) == pytest.approx(30.0)


def _probing(start: float, rate: float) -> DimensionState:
    state = DimensionState(rate, None, 0.05)
    state.probe_from = state.held = start
    return state


def test_a_probe_refused_just_above_where_it_started_returns_there() -> None:
    """Refused within 5% of a rate that held: back to that rate, not a cut below it."""
    assert return_rate(_probing(0.98, 1.02), 1.02, None) == pytest.approx(0.98)
    # The cycle's floor, when higher, wins over the start.
    assert return_rate(_probing(0.95, 0.99), 0.99, 0.96) == pytest.approx(0.96)


def test_a_probe_refused_far_above_where_it_started_returns_halfway_or_near_it() -> None:
    """Started far below (a noisy first estimate): halfway up, and at least 90% of the refusal."""
    assert return_rate(_probing(1.7, 2.45), 2.45, 1.78) == pytest.approx(0.9 * 2.45)
    assert return_rate(_probing(1.0, 1.2), 1.2, None) == pytest.approx(1.1)
    assert return_rate(_probing(1.0, 1.2), 1.2, None) <= 0.98 * 1.2


def test_a_refusal_while_holding_returns_only_once_settled() -> None:
    """At a found limit, a refused hold goes back to the best floor; before that, cut as usual."""
    state = DimensionState(2.2, None, 0.05)
    assert return_rate(state, 2.2, 1.9) is None  # nothing found yet: the episode cuts
    state.settled = True
    state.held = 1.9
    assert return_rate(state, 2.2, 1.95) == pytest.approx(max(1.95, 0.9 * 2.2))
    assert return_rate(state, 2.0, None) == pytest.approx(1.9)


@pytest.mark.parametrize("rps", [0.5, 0.75])
async def test_a_limit_below_one_call_a_second_is_not_overrun_for_good(rps: float) -> None:
    """Below 1 rps each refusal came more than the quiet period after the last: every one began
    a new episode, met only the gentle first cut, and growth undid it (1.5 x ideal, one call in
    two refused to the end). An episode now lasts a few calls: the cuts add up."""
    config = SimulatorConfig(requests_per_second=rps, latency=0.05)
    jobs = int(150 * rps)
    world = await _run(config, jobs)
    ratio = world.makespan / ideal_makespan(config, jobs)
    assert ratio <= 1.25, f"makespan {ratio:.3f} x ideal"
    start = min(s.at for s in world.sent)
    steady = [s for s in world.sent if s.at >= start + 2 * DISCOVERY]
    refused = sum(s.status == 429 for s in steady) / len(steady)
    assert refused <= 0.08, f"{refused:.1%} of the calls after discovery refused"


async def test_the_first_estimate_counts_the_first_contact_call() -> None:
    """2 rps at 50 ms: the first-contact call took one of the server's two; counted from the
    pool's opening instead, the first 429 read 0.5-1.5 rps and growth took tens of seconds."""
    config = SimulatorConfig(requests_per_second=2.0, latency=0.05)
    jobs = 300
    world = await _run(config, jobs)
    ratio = world.makespan / ideal_makespan(config, jobs)
    assert ratio <= 1.05, f"makespan {ratio:.3f} x ideal"


@pytest.mark.parametrize(("rps", "latency"), [(2.0, 0.05), (1.0, 0.05), (1.0, 5.0), (0.75, 1.0)])
async def test_a_limit_that_halves_to_one_call_a_second_or_less_settles_under_it(
    rps: float, latency: float
) -> None:
    """The limit halves 40 s in. Recovery climbed back to the rate before the cut: at a call or
    two a second a measurement never holds enough calls to lower that target, so the rate went
    over the new limit every ~17 s (1 to 0.5 rps: 1.39 x ideal, 45 of 165 calls refused). A
    climb refused with calls taken since the last refusal now lowers it."""
    change = 40.0
    config = SimulatorConfig(
        requests_per_second=rps,
        latency=latency,
        limit_changes=(LimitChange(after=change, factor=0.5),),
    )
    jobs = int(rps * change + 160.0 * rps / 2)
    world = await _run(config, jobs)
    # The best schedule: the burst and the limit for 40 s, then half of it.
    ideal = change + (jobs - max(1.0, rps) - rps * change) / (rps / 2) + latency
    ratio = world.makespan / ideal
    assert ratio <= 1.25, f"makespan {ratio:.3f} x ideal"
    start = min(s.at for s in world.sent)
    settled = [s for s in world.sent if s.at >= start + change + DISCOVERY]
    refused = sum(s.status == 429 for s in settled) / len(settled)
    assert refused <= 0.12, f"{refused:.1%} of the calls 30 s after the halving refused"


def test_a_return_refused_before_bounds_the_next_one() -> None:
    """0.25 rps: a probe from 0.246 refused at 0.271 returned halfway, to 0.259, over the limit,
    every ~50 s; a return refused at 0.259 now bounds the next at halfway down to the start.
    A probe refused far above it (the limit rose) is not held to it."""
    state = _probing(0.246, 0.271)
    state.refused_return = 0.259
    assert return_rate(state, 0.271, None) == pytest.approx(0.5 * (0.246 + 0.259))
    assert return_rate(_probing(0.246, 0.271), 0.271, None) == pytest.approx(0.2585)
    risen = _probing(0.246, 0.6)
    risen.refused_return = 0.259
    assert return_rate(risen, 0.6, None) == pytest.approx(0.9 * 0.6)
