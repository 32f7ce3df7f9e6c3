"""Two roads in virtual time: the auto run meets its deadline, each line on one road, once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from batch_worlds import VirtualBatchRest
from worlds import World, make_world_scheduler

from grok_scheduler import FakeClock, Priority
from grok_scheduler._batch._client import BatchClient
from grok_scheduler._batch._journal import Journal
from grok_scheduler._batch._road import BatchRoad
from grok_scheduler._batch._roads import Line, RoadOutcome, Roads
from grok_scheduler.simulator import SimulatorConfig
from grok_scheduler.simulator._batches import BatchConfig

MODEL = "grok-4"


def _lines(n: int, priority: int = Priority.NORMAL, prefix: str = "q") -> list[Line]:
    def body(i: int) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "user", "content": f"question {i}"}]}

    return [
        Line(f"{prefix}{i}", priority, f"question {i}", {}, body(i), metadata=i) for i in range(n)
    ]


async def _run(
    lines: list[Line],
    *,
    deadline_in: float,
    delay: float = 3.0,
    rps: int = 20,
    batch_delay: float = 3600.0,
) -> tuple[list[RoadOutcome], Roads, World, VirtualBatchRest, float]:
    clock = FakeClock()
    config = SimulatorConfig(requests_per_second=rps, latency=1.0, latency_dist="fixed")
    world = World(config, clock)
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=delay))
    road = BatchRoad(
        BatchClient(rest, clock=clock, rng=random.Random(0)),
        Journal(None),
        clock=clock,
        poll_min=1.0,
        poll_max=4.0,
    )
    outcomes: list[RoadOutcome] = []
    start = clock.now()
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        roads = Roads(
            scheduler,
            road,
            clock=clock,
            via="auto",
            deadline=start + deadline_in,
            batch_delay=batch_delay,
        )
        roads.assign(lines)
        await clock.run_until_done(asyncio.ensure_future(roads.run(outcomes.append)))
    return outcomes, roads, world, rest, clock.now() - start


async def test_auto_meets_a_deadline_of_half_the_online_makespan() -> None:
    """1000 lines at 20 rps take ~50 s online; with 25 s, the overflow goes by batch in time.

    The user expects the batch road within 10 s (it takes 3 s here).
    """
    outcomes, roads, world, rest, took = await _run(
        _lines(1000), deadline_in=25.0, batch_delay=10.0
    )
    assert took <= 25.0
    ids = [o.custom_id for o in outcomes]
    assert sorted(ids) == sorted(f"q{i}" for i in range(1000))  # each line exactly once
    assert all(o.ok for o in outcomes)
    online = {o.custom_id for o in outcomes if o.via == "online"}
    batch = {o.custom_id for o in outcomes if o.via == "batch"}
    assert not online & batch and rest.book.stats.duplicates == 0
    assert rest.book.stats.requests_added == len(batch) == roads.diverted
    assert len([s for s in world.sent if s.status == 200]) == len(online)
    # Not everything fled: the online road did nearly what 20/s can start in 24 s.
    assert 430 <= len(online) <= 480, len(online)


async def test_a_generous_deadline_sends_nothing_to_the_batch_road() -> None:
    """When the online road can make it, no line is sent through a batch."""
    outcomes, roads, _, rest, took = await _run(_lines(100), deadline_in=60.0)
    assert {o.via for o in outcomes} == {"online"} and len(outcomes) == 100
    assert roads.diverted == 0 and rest.book.stats.created == 0
    assert took < 60.0


async def test_high_lines_stay_online_and_low_lines_prefer_the_batch() -> None:
    """CRITICAL/HIGH never leave the online road, even past the deadline; LOW go by batch."""
    lines = (
        _lines(150, Priority.HIGH, "h")
        + _lines(150, Priority.NORMAL, "n")
        + _lines(20, Priority.LOW, "l")
    )
    outcomes, _, _, _, _ = await _run(lines, deadline_in=4.0)
    via = {o.custom_id: o.via for o in outcomes}
    assert len(via) == len(outcomes) == 320
    assert all(via[f"h{i}"] == "online" for i in range(150))
    assert all(via[f"l{i}"] == "batch" for i in range(20))
    assert any(via[f"n{i}"] == "batch" for i in range(150))


async def test_costs_per_road_and_the_same_work_online() -> None:
    """The batch road costs half; the same work online prices batch lines at full price."""
    _, roads, _, _, _ = await _run(_lines(400), deadline_in=10.0)
    costs = roads.costs
    assert costs.online_lines + costs.batch_lines == 400
    assert costs.online_usd > 0 and costs.batch_usd > 0
    assert abs(costs.same_work_online_usd - (costs.online_usd + 2 * costs.batch_usd)) < 1e-9
    per_line_online = costs.online_usd / costs.online_lines
    per_line_batch = costs.batch_usd / costs.batch_lines
    assert abs(per_line_batch / per_line_online - 0.5) < 0.01
