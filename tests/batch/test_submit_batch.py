"""``Scheduler.submit_batch`` in virtual time: batch and auto roads, cancellation, bad items."""

from __future__ import annotations

import asyncio

from batch_worlds import VirtualBatchRest
from worlds import World, make_world_scheduler

from grok_scheduler import FakeClock, Priority
from grok_scheduler._batch._roads import RoadOutcome
from grok_scheduler.simulator import SimulatorConfig
from grok_scheduler.simulator._batches import BatchConfig

CONFIG = SimulatorConfig(requests_per_second=20, latency=1.0, latency_dist="fixed")


async def test_submit_batch_answers_every_item_by_batch() -> None:
    """Items as for map (prompts, mappings with metadata) come back by batch, once each."""
    clock = FakeClock()
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=30.0))
    items = [f"q{i}" for i in range(5)] + [{"prompt": "x", "metadata": {"custom_id": "m"}}]
    async with make_world_scheduler(clock, World(CONFIG, clock)) as scheduler:
        outcomes: list[RoadOutcome] = []

        async def consume() -> None:
            async with scheduler.submit_batch(items, rest=rest, poll_min=5.0) as run:
                outcomes.extend([o async for o in run])

        await clock.run_until_done(asyncio.ensure_future(consume()))
    assert sorted(o.custom_id for o in outcomes) == ["0", "1", "2", "3", "4", "m"]
    assert all(o.ok and o.via == "batch" for o in outcomes)
    assert rest.book.stats.requests_added == 6 and rest.book.stats.cancelled_batches == 0


async def test_leaving_early_cancels_the_remote_batch() -> None:
    """A caller that stops before the answers cancels the batch on the server."""
    clock = FakeClock()
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=3600.0))
    async with make_world_scheduler(clock, World(CONFIG, clock)) as scheduler:
        run = scheduler.submit_batch(["a", "b"], rest=rest, poll_min=5.0)

        async def first() -> None:
            async with run:
                async for _ in run:
                    break

        waiting = asyncio.ensure_future(first())
        await clock.advance(60.0)
        assert not waiting.done() and rest.book.stats.requests_added == 2
        waiting.cancel()
        await clock.run_until_done(asyncio.ensure_future(asyncio.sleep(0)))
        await asyncio.gather(waiting, return_exceptions=True)
    assert rest.book.stats.cancelled_batches == 1


async def test_submit_batch_auto_keeps_high_items_online() -> None:
    """via='auto': HIGH items online, LOW items by batch, all within the deadline."""
    clock = FakeClock()
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=2.0))
    items = [{"prompt": f"h{i}", "priority": Priority.HIGH} for i in range(10)]
    items += [{"prompt": f"l{i}", "priority": Priority.LOW} for i in range(10)]
    start = clock.now()
    async with make_world_scheduler(clock, World(CONFIG, clock)) as scheduler:
        outcomes: list[RoadOutcome] = []

        async def consume() -> None:
            run = scheduler.submit_batch(items, via="auto", deadline=30.0, rest=rest, poll_min=1.0)
            async with run:
                outcomes.extend([o async for o in run])
            assert run.costs.online_lines == 10 and run.costs.batch_lines == 10

        await clock.run_until_done(asyncio.ensure_future(consume()))
    via = {o.custom_id: o.via for o in outcomes}
    assert [via[str(i)] for i in range(20)] == ["online"] * 10 + ["batch"] * 10
    assert clock.now() - start <= 30.0


async def test_submit_batch_auto_tells_when_the_batch_road_is_late() -> None:
    """The user expects batch answers in 5 s; they take 100 s: late lines are counted."""
    clock = FakeClock()
    rest = VirtualBatchRest(clock, BatchConfig(processing_delay=100.0))
    items = [f"q{i}" for i in range(600)]  # ~30 s online at 20 rps; the deadline is 12 s
    async with make_world_scheduler(clock, World(CONFIG, clock)) as scheduler:
        outcomes: list[RoadOutcome] = []
        late: dict[str, int] = {}

        async def consume() -> None:
            run = scheduler.submit_batch(
                items, via="auto", deadline=12.0, batch_delay=5.0, rest=rest, poll_min=1.0
            )
            async with run:
                outcomes.extend([o async for o in run])
            late.update(run.late)

        await clock.run_until_done(asyncio.ensure_future(consume()))
    batch = sum(1 for o in outcomes if o.via == "batch")
    assert len(outcomes) == 600 and batch > 0
    assert late == {"online": 0, "batch": batch}
