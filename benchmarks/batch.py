"""The two roads: 20,000 lines against a 20 rps limit, online, by batch, and auto by a deadline.

    .venv/bin/python benchmarks/batch.py                  # 20,000 lines, 20 rps, 1 s calls
    .venv/bin/python benchmarks/batch.py --lines 5000 --batch-delay 60

Virtual time: the simulator's world (``VirtualServer``) and its Batch API book run on a
``FakeClock`` behind the real scheduler and batch road, so ~17 minutes of traffic take
a minute or two and repeat exactly. Runs of the same lines:

* online alone (``Scheduler.map``) at the learned limit;
* batch alone (every line through the Batch API, a short simulated processing delay);
* auto with a deadline of half the online makespan: the plan sends what cannot finish online
  to the batch road, as late as it safely can;
* the same auto run in two harder worlds: the limit halves a quarter of the way to the
  deadline, and calls take 5 s instead of 1 s.

No limit is stated by headers (the scheduler learns it), and the plan is not told how long the
batch road takes: it assumes the library's default (an hour) until it sees batch answers.
``fewest`` is the least any plan could send by batch: the lines beyond what the world's limit
lets the online road start before ``deadline - latency`` (a perfect road from the first second,
so no real plan reaches it). The table shows the makespan, whether the deadline was met, lines
per road, the batch lines above ``fewest``, and the cost per road (the simulator's prices; a
batch line costs half) beside the same work online.
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
from grok_scheduler.simulator._config import LimitChange  # noqa: E402

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
    answered: list[float] = []

    def emit(outcome: RoadOutcome) -> None:
        outcomes.append(outcome)
        answered.append(clock.now())

    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        at = start + deadline if deadline is not None else None
        two = Roads(scheduler, road, clock=clock, via=via, deadline=at)
        two.assign(_lines(n))
        await clock.run_until_done(asyncio.ensure_future(two.run(emit)), limit=10**7)
    assert len({o.custom_id for o in outcomes}) == len(outcomes) == n
    assert all(o.ok for o in outcomes) and rest.book.stats.duplicates == 0
    c = two.costs
    return {
        "makespan": max(answered) - start,
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
    parser.add_argument("--no-worlds", action="store_true", help="skip the two harder worlds")
    args = parser.parse_args()
    n, rps, latency = args.lines, args.rps, args.latency

    def world(**changes: Any) -> SimulatorConfig:
        fields: dict[str, Any] = {"requests_per_second": rps, "latency": latency}
        fields.update(changes)
        return SimulatorConfig(latency_dist="fixed", **fields)

    rows: list[tuple[str, float | None, float | None, dict[str, Any]]] = []
    alone = await online(n, world())
    rows.append(("online alone", None, None, alone))
    batch_alone = await roads(n, world(), "batch", args.batch_delay, None)
    rows.append(("batch alone", None, None, batch_alone))
    deadline = alone["makespan"] / 2
    auto = await roads(n, world(), "auto", args.batch_delay, deadline)
    rows.append(("auto", deadline, n - rps * (deadline - latency), auto))
    if not args.no_worlds:
        fall = deadline / 4
        halves = world(limit_changes=(LimitChange(after=fall, factor=0.5),))
        run = await roads(n, halves, "auto", args.batch_delay, deadline)
        started = rps * fall + rps / 2 * (deadline - latency - fall)
        rows.append((f"auto, limit halves at {fall:.0f} s", deadline, n - started, run))
        slow = world(latency=5.0)
        run = await roads(n, slow, "auto", args.batch_delay, deadline)
        rows.append(("auto, 5 s calls", deadline, n - rps * (deadline - 5.0), run))
    print(
        f"{n} lines, {rps} rps, {latency} s calls, batch processing "
        f"{args.batch_delay} s (virtual time)\n"
    )
    print(
        "| run | deadline s | makespan s | met | online lines | batch lines | fewest batch "
        "| above fewest | online $ | batch $ | total $ | same work online $ |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, limit, fewest, r in rows:
        met = "-" if limit is None else ("yes" if r["makespan"] <= limit else "no")
        total = r["online_usd"] + r["batch_usd"]
        least = "-" if fewest is None else f"{fewest:.0f}"
        above = "-" if fewest is None else f"{(r['batch'] / fewest - 1) * 100:+.1f}%"
        print(
            f"| {name} | {'-' if limit is None else f'{limit:.1f}'} | {r['makespan']:.1f} "
            f"| {met} | {r['online']} | {r['batch']} | {least} | {above} "
            f"| {r['online_usd']:.4f} | {r['batch_usd']:.4f} | {total:.4f} | {r['same_usd']:.4f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
