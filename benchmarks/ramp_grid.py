"""The first-contact grid in virtual time: makespan / ideal and the 429 share, low to high limits.

Each cell runs a default ``Scheduler`` (default ``RetryPolicy`` and ``AdaptivePolicy``,
``max_concurrency=None``) against the simulator's ``VirtualServer`` on a ``FakeClock``, so the
figures do not depend on the machine's load. Grid: limit {1, 2, 10, 40, 200, 500, 1000 rps,
unlimited} x latency {50 ms, 1 s, 5 s lognormal (median 1 s, sigma 0.5)} x evidence {none,
OpenAI-style per-second headers, IETF headers, xAI's limit-stating 429 body} x the limit given
to the client or not. Each cell sends ``--seconds`` of the limit's ideal (the server's one-second
burst counted; at least 600 jobs' worth up to 150 s, so a low limit's discovery is not the
whole run); ideal is the server's
schedule plus one median latency (for the lognormal cells, the time to the last send against
the rate's ideal, as tests/limits/test_rate_matrix.py bounds it). Unlimited cells send as many
jobs as the 1,000 rps cell and report the makespan in seconds instead of a ratio.

    .venv/bin/python benchmarks/ramp_grid.py                       # the whole grid
    .venv/bin/python benchmarks/ramp_grid.py --limit 500 --limit 1000 --evidence none
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import recording_server

from grok_scheduler import FakeClock, MockTransport, Scheduler
from grok_scheduler.simulator import SimulatorConfig

KEY = "xai-benchmark-key-0000000000000000"
LIMITS = ["1", "2", "10", "40", "200", "500", "1000", "unlimited"]
LATENCIES = ["0.05", "1", "lognormal"]
EVIDENCE = ["none", "openai-1s", "ietf", "xai"]
GIVEN = ["no", "yes"]
UNLIMITED_JOBS = 9000


@dataclass(frozen=True, slots=True)
class Cell:
    """One world and what was measured in it."""

    limit: str
    latency: str
    evidence: str
    given: str
    jobs: int
    ratio: float  # makespan / ideal (seconds for an unlimited world)
    share_429: float
    failed: int


def _config(limit: str, latency: str, evidence: str) -> SimulatorConfig:
    lognormal = latency == "lognormal"
    options: dict[str, Any] = {
        "latency": 1.0 if lognormal else float(latency),
        "latency_dist": "lognormal" if lognormal else "fixed",
        "latency_sigma": 0.5 if lognormal else 0.0,
        "headers": evidence if evidence in ("openai-1s", "ietf") else "none",
        "rate_limit_body": "xai" if evidence == "xai" else "plain",
        "seed": 1,
    }
    if limit != "unlimited":
        options["requests_per_second"] = float(limit)
    return SimulatorConfig(**options)


async def run_cell(limit: str, latency: str, evidence: str, given: str, seconds: float) -> Cell:
    """Run one cell in virtual time."""
    clock = FakeClock(start=0.0)
    handler, sent = recording_server(_config(limit, latency, evidence), clock)

    rps = None if limit == "unlimited" else float(limit)
    # Low limits run longer: their discovery takes tens of seconds whatever the run's length.
    ideal_seconds = seconds if rps is None else max(seconds, min(150.0, 600.0 / rps))
    jobs = UNLIMITED_JOBS if rps is None else round(rps * (ideal_seconds + 1.0))
    configured = rps if given == "yes" else None
    scheduler = Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockTransport(handler, clock=clock),
        requests_per_second=configured,
        max_concurrency=None,
        rng=random.Random(0),
    )
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    failed = sum(f.exception() is not None for f in futures)
    first = min(at for at, _, _ in sent)
    if rps is None:
        ratio = max(done for _, done, _ in sent) - first
    elif latency == "lognormal":
        last_send = max(at for at, _, _ in sent)
        ratio = (last_send - first) / ((jobs - rps) / rps)
    else:
        ideal = (jobs - max(1.0, rps)) / rps + float(latency)
        ratio = (max(done for _, done, _ in sent) - first) / ideal
    share = sum(status == 429 for _, _, status in sent) / len(sent)
    return Cell(limit, latency, evidence, given, jobs, ratio, share, failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", action="append", choices=LIMITS)
    parser.add_argument("--latency", action="append", choices=LATENCIES)
    parser.add_argument("--evidence", action="append", choices=EVIDENCE)
    parser.add_argument("--given", action="append", choices=GIVEN)
    parser.add_argument("--seconds", type=float, default=8.0, help="ideal seconds per cell")
    args = parser.parse_args()
    print("| limit | latency | evidence | given | jobs | makespan / ideal | 429s | failed |")
    print("|---|---|---|---|---|---|---|---|")
    started = time.process_time()
    for limit in args.limit or LIMITS:
        for latency in args.latency or LATENCIES:
            for evidence in args.evidence or EVIDENCE:
                for given in args.given or GIVEN:
                    if limit == "unlimited" and given == "yes":
                        continue
                    cell = asyncio.run(run_cell(limit, latency, evidence, given, args.seconds))
                    shown = f"{cell.ratio:.1f} s" if limit == "unlimited" else f"{cell.ratio:.3f}"
                    print(
                        f"| {limit} | {latency} | {evidence} | {given} | {cell.jobs} | {shown} "
                        f"| {cell.share_429:.1%} | {cell.failed} |",
                        flush=True,
                    )
    print(f"\nCPU {time.process_time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
