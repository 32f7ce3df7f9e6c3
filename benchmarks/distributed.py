"""Four processes, one API key, one limit: Redis-shared limiting against the naive splits.

The simulator (in this process) enforces 40 requests per second strictly (a 40-request burst).
Four scheduler processes (this file run with ``--worker``) share the work, in two shapes:

* even: every process has a quarter of the jobs;
* skewed: one process has 85% of them, the others 5% each.

and three ways to limit:

* redis: every process uses ``RedisLimiter`` with the whole limit (the fleet shares it);
* static: every process uses a local limiter with a quarter of the limit;
* uncoordinated (even only): every process a local limiter with the whole limit;
* redis-unknown (even only, ``--unknown-jobs`` jobs, 1,200 by default so that the run lasts
  about 30 s and there is time to learn): every process uses ``RedisLimiter`` with no limit
  configured anywhere, and default policies (``max_concurrency=None``); the fleet must discover
  the limit together from 429s and the shared acceptance log. Issue 12's target: makespan /
  ideal <= 1.15 and <= 5% 429s.

Ideal is the best the server allows: ``(jobs - burst) / rate + latency``. Reported per row:
makespan (from the common start signal to the last answer), makespan / ideal, 429s, and for the
Redis rows the script calls to Redis per job.

Run (needs ``redis-server`` on 127.0.0.1:6379)::

    .venv/bin/python benchmarks/distributed.py [--jobs 400] [--unknown-jobs 1200]
        [--redis-url redis://127.0.0.1:6379/9] [--only redis-unknown]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grok_scheduler import Scheduler  # noqa: E402
from grok_scheduler.distributed import RedisLimiter  # noqa: E402
from grok_scheduler.simulator import Simulator, SimulatorConfig  # noqa: E402

RATE = 40.0
PROCESSES = 4
LATENCY = 0.2


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario's figures."""

    shape: str
    limiter: str
    jobs: int
    makespan: float
    ideal: float
    rate_limited: int
    requests: int
    failed: int
    round_trips: int


# -- one worker process -------------------------------------------------------------------
async def work(args: argparse.Namespace) -> None:
    """Wait for "go" on stdin, run the jobs, print a JSON summary."""
    if os.environ.get("GROK_BENCH_TRACE"):  # the controller's decisions, to stderr
        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format=f"%(created).3f {os.getpid()} %(message)s"
        )
    limiter = None
    unknown = args.limiter == "redis-unknown"
    if args.limiter == "redis":
        limiter = RedisLimiter(url=args.redis_url, key=args.key, requests_per_second=args.rps)
    elif unknown:  # nothing configured: the fleet learns the limit
        limiter = RedisLimiter(url=args.redis_url, key=args.key)
    async with Scheduler(
        api_key="xai-benchmark",
        base_url=args.base_url,
        requests_per_second=None if limiter else args.rps,
        limiter=limiter,
        max_concurrency=None if unknown else 32,
    ) as scheduler:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcomes = await asyncio.gather(
            *(scheduler.submit(f"job {i}", max_tokens=16) for i in range(args.jobs)),
            return_exceptions=True,
        )
        end = time.monotonic()
        round_trips = limiter.round_trips if limiter else 0
    failed = sum(1 for outcome in outcomes if isinstance(outcome, BaseException))
    print(json.dumps({"end": end, "failed": failed, "round_trips": round_trips}), flush=True)


# -- the conductor ------------------------------------------------------------------------
async def scenario(
    sim: Simulator, redis_url: str, shape: str, limiter: str, split: list[int]
) -> Row:
    """Run four workers with this split of the jobs and this way of limiting."""
    await asyncio.sleep(1.5)  # let the server's bucket refill after the previous scenario
    sim.reset_stats()
    key = f"bench-{uuid.uuid4().hex}"
    rps = RATE / PROCESSES if limiter == "static" else RATE
    processes = []
    for jobs in split:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--limiter",
            limiter,
            "--jobs",
            str(jobs),
            "--rps",
            str(rps),
            "--base-url",
            sim.base_url,
            "--redis-url",
            redis_url,
            "--key",
            key,
        ]
        processes.append(
            await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )
    for process in processes:
        assert process.stdout is not None
        assert (await process.stdout.readline()).strip() == b"ready"
    start = time.monotonic()
    for process in processes:  # all start together, then all are awaited
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    summaries = []
    for process in processes:
        out, _ = await process.communicate()
        summaries.append(json.loads(out.decode().strip().splitlines()[-1]))
    await _delete(redis_url, f"grok-scheduler:{{{key}}}")
    total = sum(split)
    return Row(
        shape=shape,
        limiter=limiter,
        jobs=total,
        makespan=max(s["end"] for s in summaries) - start,
        ideal=max(0.0, total - RATE) / RATE + LATENCY,
        rate_limited=sim.stats.rate_limited,
        requests=sim.stats.requests,
        failed=sum(s["failed"] for s in summaries),
        round_trips=sum(s["round_trips"] for s in summaries),
    )


async def _delete(url: str, key: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        # The acceptance log and its watermarks, if they were used.
        await client.delete(key, f"{key}:acceptance", f"{key}:acceptance:marks")
    finally:
        await client.aclose()


def report(rows: list[Row]) -> None:
    """Print the table."""
    print(f"simulator: {RATE:g} rps (burst {RATE:g}), latency {LATENCY}s; {PROCESSES} processes")
    header = (
        f"{'shape':7} {'limiter':14} {'jobs':>5} {'makespan':>9} {'ideal':>7} "
        f"{'ratio':>6} {'429s':>5} {'429 %':>6} {'failed':>6} {'redis/job':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        share = 100.0 * row.rate_limited / max(1, row.requests)
        trips = f"{row.round_trips / row.jobs:.2f}" if row.limiter.startswith("redis") else "-"
        print(
            f"{row.shape:7} {row.limiter:14} {row.jobs:5d} {row.makespan:8.2f}s "
            f"{row.ideal:6.2f}s {row.makespan / row.ideal:6.2f} {row.rate_limited:5d} "
            f"{share:5.1f}% {row.failed:6d} {trips:>9}"
        )


async def conduct(args: argparse.Namespace) -> None:
    """Run every scenario against one simulator and print the comparison."""
    quarter = args.jobs // PROCESSES
    even = [quarter] * PROCESSES
    small = args.jobs * 5 // 100
    skewed = [args.jobs - small * (PROCESSES - 1)] + [small] * (PROCESSES - 1)
    unknown = [args.unknown_jobs // PROCESSES] * PROCESSES
    config = SimulatorConfig(requests_per_second=RATE, latency=LATENCY, latency_jitter=0.25)
    rows = []
    async with Simulator(config) as sim:
        for shape, split, limiters in (
            ("even", even, ("redis", "static", "uncoordinated")),
            ("skewed", skewed, ("redis", "static")),
            ("even", unknown, ("redis-unknown",)),
        ):
            for limiter in limiters:
                if args.only and limiter not in args.only:
                    continue
                rows.append(await scenario(sim, args.redis_url, shape, limiter, split))
                print(f"  done: {shape} / {limiter}", file=sys.stderr, flush=True)
    report(rows)


def main() -> None:
    """Parse the command line; conduct, or be one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400, help="jobs in total (default 400)")
    parser.add_argument(
        "--unknown-jobs", type=int, default=1200, help="jobs of the redis-unknown row (1200)"
    )
    parser.add_argument("--only", action="append", help="run only these limiters (repeatable)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--limiter", default="redis", help=argparse.SUPPRESS)
    parser.add_argument("--rps", type=float, default=RATE, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(work(args) if args.worker else conduct(args))


if __name__ == "__main__":
    main()
