"""Exploration: run rate-control cells in virtual time and print makespan/ideal and 429 share."""
from __future__ import annotations

import asyncio
import sys
import time

sys.path.insert(0, "tests")
from worlds import World, ideal_makespan, make_world_scheduler  # noqa: E402

from grok_scheduler import FakeClock  # noqa: E402
from grok_scheduler.simulator import SimulatorConfig  # noqa: E402

LIMIT = 10.0


def config(latency: float, evidence: str, dist: str = "fixed", sigma: float = 0.0) -> SimulatorConfig:
    headers = "none"
    body = "plain"
    if evidence in ("openai-60s", "openai-1s", "ietf", "generic"):
        headers = evidence
    if evidence == "xai":
        body = "xai"
    return SimulatorConfig(
        requests_per_second=LIMIT,
        latency=latency,
        latency_dist=dist,  # type: ignore[arg-type]
        latency_sigma=sigma,
        headers=headers,  # type: ignore[arg-type]
        rate_limit_body=body,  # type: ignore[arg-type]
        seed=1,
    )


async def cell(latency: float, evidence: str, given: str, jobs: int = 600, dist: str = "fixed", sigma: float = 0.0) -> tuple[float, float, int, float]:
    clock = FakeClock()
    world = World(config(latency, evidence, dist, sigma), clock)
    rps = {"right": LIMIT, "2x": 2 * LIMIT, "none": None}[given]
    async with make_world_scheduler(clock, world, requests_per_second=rps, max_concurrency=None) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
        failed = sum(1 for f in futures if f.exception() is not None)
        learned = scheduler.statistics().limiter
    ideal = ideal_makespan(world.config, jobs, latency=latency)
    return world.makespan / ideal, world.share_429, failed, learned.requests_per_second if learned and learned.requests_per_second else -1


async def main() -> None:
    lats = [float(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else [0.05, 1.0, 5.0, 30.0]
    evs = sys.argv[2].split(",") if len(sys.argv) > 2 else ["none", "openai-60s", "openai-1s", "ietf", "xai"]
    givens = sys.argv[3].split(",") if len(sys.argv) > 3 else ["right", "2x", "none"]
    for lat in lats:
        for ev in evs:
            for given in givens:
                t = time.perf_counter()
                ratio, share, failed, learned = await cell(lat, ev, given)
                flag = "" if ratio <= 1.10 and share <= 0.03 else "  <-- MISS"
                print(f"lat={lat:5} ev={ev:10} given={given:5} ratio={ratio:5.2f} 429={share:6.1%} failed={failed} learned={learned:6.2f} ({time.perf_counter()-t:.1f}s){flag}", flush=True)


asyncio.run(main())
