"""The two roads: 20,000 lines against a 20 rps limit, online, by batch, and auto by a deadline.

    .venv/bin/python benchmarks/batch.py                  # 20,000 lines, 20 rps, 1 s calls
    .venv/bin/python benchmarks/batch.py --lines 5000 --batch-delay 60

Virtual time: the simulator's world (``VirtualServer``) and its Batch API book run on a
``FakeClock`` behind the real scheduler and batch road, so ~17 minutes of traffic take
seconds and repeat exactly. Three runs of the same lines:

* online alone (``Scheduler.map``) at the learned limit;
* batch alone (every line through the Batch API, a short simulated processing delay);
* auto with a deadline of half the online makespan: the learned-rate plan sends what cannot
  finish online to the batch road. ``fewest`` is the least any plan could send by batch: the
  lines beyond what 20 rps can start before ``deadline - latency``.

The table shows the makespan, whether the deadline was met, lines per road and the cost per
road (the simulator's prices; a batch line costs half) beside the same work online.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from batch_worlds import VirtualBatchRest  # noqa: E402
from worlds import World, make_world_scheduler  # noqa: E402

from grok_scheduler import FakeClock  # noqa: E402
from grok_scheduler._batch._client import BatchClient  # noqa: E402
from grok_scheduler._batch._journal import Journal  # noqa: E402
from grok_scheduler._batch._road import BatchRoad  # noqa: E402
from grok_scheduler._batch._roads import Line, RoadOutcome, Roads  # noqa: E402
from grok_scheduler._models import USD_TICKS_PER_USD, Priority  # noqa: E402
from grok_scheduler.simulator import SimulatorConfig  # noqa: E402
from grok_scheduler.simulator._batches import BatchConfig  # noqa: E402

MODEL = "grok-4"


def _lines(n: int) -> list[Line]:
    def body(i: int) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "user", "content": f"question {i}"}]}

    return [Line(f"q{i}", Priority.NORMAL, f"question {i}", {}, body(i), i) for i in range(n)]


async def online(n: int, config: SimulatorConfig) -> dict[str, Any]:
    clock = FakeClock()
    world = World(config, clock)
    start = clock.now()
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        stream = scheduler.map([f"question {i}" for i in range(n)], window=64)

        async def drain() -> None:
            async for outcome in stream:
                assert outcome.ok, outcome.error

        await clock.run_until_done(asyncio.ensure_future(drain()), limit=10**6)
        ticks = scheduler.statistics().cost_in_usd_ticks
    usd = ticks / USD_TICKS_PER_USD
    return {
        "makespan": clock.now() - start,
        "online": n,
        "batch": 0,
        "online_usd": usd,
        "batch_usd": 0.0,
        "same_usd": usd,
    }


async def roads(
    n: int, config: SimulatorConfig, via: str, delay: float, deadline: float | None
) -> dict[str, Any]:
    clock = FakeClock()
    world = World(config, clock)
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=delay), config)
    road = BatchRoad(
        BatchClient(rest, clock=clock, rng=random.Random(0)),
        Journal(None),
        clock=clock,
        poll_min=5.0,
        poll_max=30.0,
    )
    start = clock.now()
    outcomes: list[RoadOutcome] = []
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        at = start + deadline if deadline is not None else None
        two = Roads(scheduler, road, clock=clock, via=via, deadline=at)
        two.assign(_lines(n))
        await clock.run_until_done(asyncio.ensure_future(two.run(outcomes.append)), limit=10**6)
    assert len({o.custom_id for o in outcomes}) == len(outcomes) == n
    assert all(o.ok for o in outcomes) and rest.book.stats.duplicates == 0
    c = two.costs
    return {
        "makespan": clock.now() - start,
        "online": c.online_lines,
        "batch": c.batch_lines,
        "online_usd": c.online_usd,
        "batch_usd": c.batch_usd,
        "same_usd": c.same_work_online_usd,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rps", type=int, default=20)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--batch-delay", type=float, default=120.0)
    args = parser.parse_args()
    config = SimulatorConfig(
        requests_per_second=args.rps, latency=args.latency, latency_dist="fixed"
    )
    rows: list[tuple[str, float | None, dict[str, Any]]] = []
    alone = await online(args.lines, config)
    rows.append(("online alone", None, alone))
    rows.append(
        ("batch alone", None, await roads(args.lines, config, "batch", args.batch_delay, None))
    )
    deadline = alone["makespan"] / 2
    auto = await roads(args.lines, config, "auto", args.batch_delay, deadline)
    rows.append(("auto", deadline, auto))
    fewest = max(0, args.lines - round(args.rps * (deadline - args.latency)))
    print(
        f"{args.lines} lines, {args.rps} rps, {args.latency} s calls, batch processing "
        f"{args.batch_delay} s (virtual time)\n"
    )
    print(
        "| run | deadline s | makespan s | met | online lines | batch lines "
        "| online $ | batch $ | total $ | same work online $ |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, limit, r in rows:
        met = "-" if limit is None else ("yes" if r["makespan"] <= limit else "no")
        total = r["online_usd"] + r["batch_usd"]
        print(
            f"| {name} | {'-' if limit is None else f'{limit:.1f}'} | {r['makespan']:.1f} "
            f"| {met} | {r['online']} | {r['batch']} | {r['online_usd']:.4f} "
            f"| {r['batch_usd']:.4f} | {total:.4f} | {r['same_usd']:.4f} |"
        )
    print(f"\nfewest batch lines any plan needs for the auto deadline: ~{fewest}")


if __name__ == "__main__":
    asyncio.run(main())
