"""map() over an async source, in virtual time: finished outcomes are never held back while the
source waits for its next item (issue 13, item 7), with bounded look-ahead and no task left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fakes import Server, make_scheduler

from grok_scheduler import FakeClock, Outcome, OutcomeStream


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _collect(clock: FakeClock, stream: OutcomeStream) -> list[tuple[float, Outcome]]:
    """Every outcome with the virtual time it was yielded at."""
    seen: list[tuple[float, Outcome]] = []

    async def consume() -> None:
        async for outcome in stream:
            seen.append((clock.now(), outcome))

    await clock.run_until_done(asyncio.ensure_future(consume()), limit=1000.0)
    return seen


@pytest.mark.parametrize("ordered", [False, True])
async def test_an_outcome_is_yielded_while_the_source_waits(
    clock: FakeClock, ordered: bool
) -> None:
    """Answered at 0.1 s while the source sleeps 300 s: yielded at 0.1 s, not at 300 s."""
    server = Server(clock, latency=0.1)

    async def source() -> AsyncIterator[str]:
        yield "early"
        await clock.sleep(300.0)
        yield "late"

    async with make_scheduler(clock, server) as scheduler:
        start = clock.now()
        seen = await _collect(clock, scheduler.map(source(), ordered=ordered))
    assert [o.result.text for _, o in seen if o.result] == ["early", "late"]
    assert seen[0][0] - start == pytest.approx(0.1)
    assert seen[1][0] - start == pytest.approx(300.1)


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_source_that_waits_for_results_does_not_deadlock(
    clock: FakeClock, ordered: bool
) -> None:
    """A producer that sends its next item only after the last one's outcome: all 5 finish."""
    server = Server(clock, latency=0.5)
    answered = asyncio.Event()

    async def producer() -> AsyncIterator[str]:
        for i in range(5):
            answered.clear()
            yield f"step {i}"
            await answered.wait()

    async with make_scheduler(clock, server) as scheduler:
        start = clock.now()
        seen: list[tuple[float, Outcome]] = []

        async def consume() -> None:
            async for outcome in scheduler.map(producer(), ordered=ordered):
                seen.append((clock.now(), outcome))
                answered.set()

        await clock.run_until_done(asyncio.ensure_future(consume()), limit=60.0)
    assert [o.index for _, o in seen] == list(range(5))
    assert [t - start for t, _ in seen] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])


async def test_look_ahead_stays_bounded_on_an_endless_async_source(clock: FakeClock) -> None:
    """An endless async source is read at most `window` items ahead of what was yielded."""
    server = Server(clock, latency=0.2)
    pulled = 0
    window = 5

    async def endless() -> AsyncIterator[str]:
        nonlocal pulled
        while True:
            await clock.sleep(0.01)
            pulled += 1
            yield f"prompt {pulled}"

    async with make_scheduler(clock, server, max_concurrency=8) as scheduler:
        stream = scheduler.map(endless(), window=window)
        worst = 0

        async def consume() -> None:
            nonlocal worst
            yielded = 0
            async for _ in stream:
                yielded += 1
                worst = max(worst, pulled - yielded)
                if yielded == 60:
                    break

        await clock.run_until_done(asyncio.ensure_future(consume()), limit=100.0)
        await stream.aclose()
        await clock.advance(1.0)  # calls already on the wire end
        assert scheduler.statistics().queued == 0
    assert 0 < worst <= window


async def test_aclose_while_the_source_waits_leaves_no_task(clock: FakeClock) -> None:
    """aclose() while the source hangs: its generator is closed and no pull task is left."""
    server = Server(clock, latency=0.1)
    closed = asyncio.Event()

    async def hangs() -> AsyncIterator[str]:
        try:
            yield "only"
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.set()

    async with make_scheduler(clock, server) as scheduler:
        stream = scheduler.map(hangs())
        first = asyncio.ensure_future(anext(stream))
        await clock.run_until_done(first)
        assert first.result().ok
        await clock.settle()
        before = asyncio.all_tasks()  # the scheduler's workers, now started
        second = asyncio.ensure_future(anext(stream))
        await clock.advance(5.0)
        assert not second.done()  # nothing outstanding, the source still waits
        await stream.aclose()
        await clock.settle()
        assert closed.is_set()
        with pytest.raises(StopAsyncIteration):
            await second
        assert asyncio.all_tasks() <= before | {asyncio.current_task()}
    assert server.prompts == ["only"]


async def test_close_input_while_the_source_waits_ends_after_submitted_work(
    clock: FakeClock,
) -> None:
    """close_input() while the source waits: submitted jobs are yielded, then iteration ends."""
    server = Server(clock, latency=1.0)

    async def source() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        await clock.sleep(1000.0)
        yield "never"

    async with make_scheduler(clock, server) as scheduler:
        stream = scheduler.map(source())
        first = asyncio.ensure_future(anext(stream))
        await clock.advance(0.5)  # both submitted, the source now sleeps
        stream.close_input()
        await clock.run_until_done(first)
        rest = await _collect(clock, stream)
        await stream.aclose()
    assert sorted(o.result.text for o in [first.result()] + [o for _, o in rest] if o.result) == [
        "a",
        "b",
    ]
    assert server.prompts == ["a", "b"]


async def test_a_source_error_reaches_the_consumer_after_what_finished(clock: FakeClock) -> None:
    """The source raises after one item: the consumer gets that outcome, then the error."""
    server = Server(clock, latency=0.1)

    async def broken() -> AsyncIterator[str]:
        yield "fine"
        await clock.sleep(1.0)
        raise ValueError("the source broke")

    async with make_scheduler(clock, server) as scheduler:
        stream = scheduler.map(broken())
        first = asyncio.ensure_future(anext(stream))
        await clock.run_until_done(first)
        assert first.result().ok
        second = asyncio.ensure_future(anext(stream))
        await clock.advance(2.0)
        with pytest.raises(ValueError, match="the source broke"):
            await second
        await stream.aclose()


async def test_the_consumer_cancelled_while_the_source_waits_loses_no_item(
    clock: FakeClock,
) -> None:
    """A consumer's wait cancelled (a timeout) while the source waits: the next item still comes."""
    server = Server(clock, latency=0.1)

    async def slow() -> AsyncIterator[str]:
        await clock.sleep(10.0)
        yield "slow"

    async with make_scheduler(clock, server) as scheduler:
        stream = scheduler.map(slow())
        waiting = asyncio.ensure_future(anext(stream))
        await clock.advance(1.0)
        waiting.cancel()
        await clock.settle()
        again = asyncio.ensure_future(anext(stream))
        await clock.run_until_done(again)
        outcome = again.result()
        assert outcome.result is not None and outcome.result.text == "slow"
        await stream.aclose()
