"""Limits below 1 request a second, in virtual time: static, halving, and halving then back.

Each cell runs a default ``Scheduler`` (nothing told about the limit, ``max_concurrency=None``)
against the simulator's ``VirtualServer`` on a ``FakeClock``, so the figures do not depend on the
machine's load. Worlds: a static limit; the limit halving ``--change`` s in; the limit halving
then doubling back at ``--back`` s. Each cell sends about ``--seconds`` of ideal work, where the
ideal is the server's schedule (its one-call burst, then the limit in force) plus the latency.
Latency {50 ms, 1 s, 5 s} x evidence {none: plain 429s; xai: limit-stating 429 bodies;
openai-1s: one-second-window headers}; ``--seeds`` runs each cell with that many client and
jitter seeds (``--jitter``, the simulator's latency jitter) and prints the mean and each run as
``ratio(429s/calls)``.

    .venv/bin/python benchmarks/low_limits.py                    # every world
    .venv/bin/python benchmarks/low_limits.py --world halving --rps 1 --evidence none
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import recording_server

from grok_scheduler import FakeClock, MockTransport, Scheduler
from grok_scheduler.simulator import LimitChange, SimulatorConfig

KEY = "xai-benchmark-key-0000000000000000"
WORLDS = {
    "static": (0.25, 0.5, 0.75),
    "halving": (2.0, 1.0, 0.75),
    "halving-back": (2.0, 1.0, 0.75),
}
LATENCIES = (0.05, 1.0, 5.0)
EVIDENCE = ("none", "xai", "openai-1s")


def _phases(world: str, rps: float, change: float, back: float) -> list[tuple[float, float]]:
    """``(until, limit)`` of each phase of the world, the last one open-ended."""
    if world == "static":
        return [(float("inf"), rps)]
    if world == "halving":
        return [(change, rps), (float("inf"), rps / 2)]
    return [(change, rps), (back, rps / 2), (float("inf"), rps)]


def _jobs(phases: list[tuple[float, float]], seconds: float) -> int:
    total, begun = 0.0, 0.0
    for until, limit in phases:
        end = min(until, seconds)
        total += limit * max(0.0, end - begun)
        begun = end
    return int(total)


def _ideal(phases: list[tuple[float, float]], jobs: int, latency: float) -> float:
    """When the last of ``jobs`` calls can be answered at best: the burst, then each limit."""
    need = jobs - max(1.0, phases[0][1])
    begun = 0.0
    for until, limit in phases:
        if need <= limit * (until - begun):
            return begun + need / limit + latency
        need -= limit * (until - begun)
        begun = until
    raise AssertionError("the last phase is open-ended")


async def run_cell(
    world: str, rps: float, latency: float, evidence: str, seed: int, args: argparse.Namespace
) -> tuple[float, int, int, int]:
    """One run: ``(makespan / ideal, 429s, calls, failed jobs)``."""
    phases = _phases(world, rps, args.change, args.back)
    changes = tuple(
        LimitChange(after=until, factor=phases[i + 1][1] / limit)
        for i, (until, limit) in enumerate(phases[:-1])
    )
    options: dict[str, Any] = {
        "requests_per_second": rps,
        "latency": latency,
        "latency_jitter": args.jitter,
        "limit_changes": changes,
        "seed": seed,
        "rate_limit_body": "xai" if evidence == "xai" else "plain",
        "headers": evidence if evidence == "openai-1s" else "none",
    }
    clock = FakeClock(start=0.0)
    handler, sent = recording_server(SimulatorConfig(**options), clock)

    jobs = _jobs(phases, args.seconds)
    scheduler = Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockTransport(handler, clock=clock),
        max_concurrency=None,
        rng=random.Random(seed),
    )
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    failed = sum(f.exception() is not None for f in futures)
    makespan = max(done for _, done, _ in sent) - min(at for at, _, _ in sent)
    refused = sum(status == 429 for _, _, status in sent)
    return makespan / _ideal(phases, jobs, latency), refused, len(sent), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", action="append", choices=list(WORLDS))
    parser.add_argument("--rps", action="append", type=float, help="the limit (before a change)")
    parser.add_argument("--latency", action="append", type=float)
    parser.add_argument("--evidence", action="append", choices=EVIDENCE)
    parser.add_argument("--seconds", type=float, default=200.0, help="ideal seconds of work")
    parser.add_argument("--change", type=float, default=40.0, help="when the limit halves")
    parser.add_argument("--back", type=float, default=100.0, help="when it doubles back")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jitter", type=float, default=0.5, help="the simulator's latency jitter")
    args = parser.parse_args()
    print("| world | limit | latency | evidence | mean / ideal | runs: ratio (429s/calls) |")
    print("|---|---|---|---|---|---|")
    started = time.process_time()
    for world in args.world or list(WORLDS):
        for rps in args.rps or WORLDS[world]:
            for latency in args.latency or LATENCIES:
                for evidence in args.evidence or EVIDENCE:
                    runs = [
                        asyncio.run(run_cell(world, rps, latency, evidence, seed, args))
                        for seed in range(args.seeds)
                    ]
                    mean = sum(ratio for ratio, _, _, _ in runs) / len(runs)
                    shown = " ".join(
                        f"{ratio:.3f} ({refused}/{calls}{f', {failed} failed' if failed else ''})"
                        for ratio, refused, calls, failed in runs
                    )
                    print(
                        f"| {world} | {rps:g} | {latency:g} | {evidence} | {mean:.3f} | {shown} |",
                        flush=True,
                    )
    print(f"\nCPU {time.process_time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
