"""Rate control across the worlds users meet, in virtual time, with the default policies.

Each cell runs 600 jobs through a default ``Scheduler`` (default ``RetryPolicy``,
``AdaptivePolicy``, ``max_concurrency=None``) against the simulator's ``VirtualServer`` and
bounds the makespan against the ideal (which counts the server's initial burst) and the share
of requests answered 429:

* latency 50 ms, 1 s, 5 s, 30 s, and lognormal (median 1 s, sigma 1: a heavy tail);
* evidence: none (xAI), OpenAI-style headers counting per minute or per second, IETF headers,
  xAI's limit-stating 429 bodies;
* the limit configured right, configured twice too high, or not given.

Targets (issue 12): every cell <= 1.10 x ideal and <= 3% 429s; nothing given and nothing
stated <= 1.20 and <= 7%; limit-stating bodies <= 1.05 and <= 2%; and no job fails. With a
heavy-tailed latency the last answers' own time is no scheduler's to shorten, so those cells
bound the time to the last send against the rate's ideal instead.
"""

from __future__ import annotations

import asyncio

import pytest
from worlds import World, ideal_makespan, make_world_scheduler

from grok_scheduler import FakeClock
from grok_scheduler.simulator import SimulatorConfig

LIMIT = 10.0
JOBS = 600
LATENCIES = ["0.05", "1", "5", "30", "lognormal"]
EVIDENCE = ["none", "openai-60s", "openai-1s", "ietf", "xai"]
GIVEN = ["right", "2x", "none"]


def _world_config(latency: str, evidence: str) -> SimulatorConfig:
    lognormal = latency == "lognormal"
    return SimulatorConfig(
        requests_per_second=LIMIT,
        latency=1.0 if lognormal else float(latency),
        latency_dist="lognormal" if lognormal else "fixed",
        latency_sigma=1.0 if lognormal else 0.0,
        headers=evidence if evidence in ("openai-60s", "openai-1s", "ietf") else "none",  # type: ignore[arg-type]
        rate_limit_body="xai" if evidence == "xai" else "plain",
        seed=1,
    )


def _targets(evidence: str, given: str) -> tuple[float, float]:
    if evidence == "xai":
        return 1.05, 0.02
    if evidence == "none" and given == "none":
        return 1.20, 0.07
    return 1.10, 0.03


@pytest.mark.parametrize("given", GIVEN)
@pytest.mark.parametrize("evidence", EVIDENCE)
@pytest.mark.parametrize("latency", LATENCIES)
async def test_rate_control_cell(latency: str, evidence: str, given: str) -> None:
    """Near the ideal with few 429s, whatever the latency, the evidence and the configuration."""
    clock = FakeClock()
    config = _world_config(latency, evidence)
    world = World(config, clock)
    configured = {"right": LIMIT, "2x": 2 * LIMIT, "none": None}[given]
    async with make_world_scheduler(
        clock, world, requests_per_second=configured, max_concurrency=None
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    most_ratio, most_429 = _targets(evidence, given)
    if latency == "lognormal":
        sends = [s.at for s in world.sent]
        ratio = (max(sends) - min(sends)) / ((JOBS - LIMIT) / LIMIT)
    else:
        ratio = world.makespan / ideal_makespan(config, JOBS, latency=float(latency))
    assert ratio <= most_ratio, f"makespan {ratio:.3f} x ideal"
    assert world.share_429 <= most_429, f"{world.share_429:.1%} answered 429"
