"""Scheduler.map: streaming over any iterable with a bounded window, ordered or as completed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from conftest import SimulatorFactory

from grok_scheduler import InvalidJobError, Scheduler
from grok_scheduler._core._map import OutcomeStream, Rejected
from grok_scheduler._transports._drain import DrainableTransport
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "test-key"


def prompts(n: int) -> list[str]:
    return [f"question number {i}" for i in range(n)]


async def spin(turns: int = 20) -> None:
    """Let other tasks run a few loop turns (no wall-clock wait)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition that depends on real sockets, failing after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (state of real sockets: nothing to await)
            await asyncio.sleep(0.001)


async def test_map_unordered_yields_every_result(simulator: Simulator) -> None:
    """Every prompt comes back once, as a result matching its prompt."""
    async with Scheduler(api_key=KEY, base_url=simulator.base_url, max_concurrency=8) as s:
        outcomes = [o async for o in s.map(prompts(50), max_tokens=20)]
    assert sorted(o.index for o in outcomes) == list(range(50))
    for outcome in outcomes:
        assert outcome.result is not None
        assert outcome.result.text.endswith(f"question number {outcome.index}")


async def test_map_ordered_keeps_input_order_despite_jitter(
    make_simulator: SimulatorFactory,
) -> None:
    """ordered=True yields in input order even when later calls finish first."""
    sim = await make_simulator(
        SimulatorConfig(requests_per_second=None, latency=0.02, latency_jitter=1.0, seed=3)
    )
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=16) as s:
        outcomes = [o async for o in s.map(prompts(40), ordered=True, window=16)]
        unordered = [o.index async for o in s.map(prompts(40), window=16)]
    assert [o.index for o in outcomes] == list(range(40))
    assert all(o.ok for o in outcomes)
    assert sorted(unordered) == list(range(40))
    assert unordered != list(range(40))  # with this jitter, completion order differs


async def test_map_accepts_an_async_iterable_and_mappings(simulator: Simulator) -> None:
    """Items may come from an async iterable, as mappings of submit options with metadata."""

    async def source() -> AsyncIterator[dict[str, object]]:
        for i in range(10):
            await asyncio.sleep(0)
            yield {"prompt": f"item {i}", "priority": i % 3, "metadata": {"n": i}}

    async with Scheduler(api_key=KEY, base_url=simulator.base_url) as s:
        outcomes = [o async for o in s.map(source())]
    assert sorted(o.metadata["n"] for o in outcomes) == list(range(10))
    assert all(o.ok for o in outcomes)


async def test_map_window_bounds_look_ahead_on_an_endless_input(simulator: Simulator) -> None:
    """An endless input is pulled at most `window` items ahead of what was yielded."""
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"prompt {i}"

    window = 5
    async with Scheduler(api_key=KEY, base_url=simulator.base_url, max_concurrency=4) as s:
        stream = s.map(endless(), window=window)
        assert isinstance(stream, OutcomeStream)
        yielded = 0
        async for outcome in stream:
            assert outcome.ok
            yielded += 1
            assert pulled - yielded <= window
            if yielded == 60:
                break
        await stream.aclose()
        await asyncio.sleep(0)
        assert s.statistics().queued == 0


async def test_map_turns_bad_items_into_error_outcomes(simulator: Simulator) -> None:
    """A bad item is an outcome with its typed error, at its position; the rest still run."""
    items: list[object] = ["fine", "", {"prompt": "x", "colour": "red"}, "also fine"]
    async with Scheduler(api_key=KEY, base_url=simulator.base_url) as s:
        outcomes = [o async for o in s.map(items, ordered=True)]  # type: ignore[arg-type]
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, InvalidJobError)
    assert isinstance(outcomes[2].error, InvalidJobError)


async def test_prepare_hook_can_reject_items(simulator: Simulator) -> None:
    """A prepare hook's Rejected becomes an outcome with its error and metadata, in order."""

    def prepare(item: int) -> object:
        if item % 2:
            return Rejected(InvalidJobError(f"odd {item}"), item)
        return f"even {item}", {"metadata": item}

    async with Scheduler(api_key=KEY, base_url=simulator.base_url) as s:
        stream = OutcomeStream(s, range(6), ordered=True, prepare=prepare)  # type: ignore[arg-type]
        outcomes = [o async for o in stream]
    assert [o.metadata for o in outcomes] == list(range(6))
    assert [o.ok for o in outcomes] == [True, False] * 3


async def test_close_input_finishes_submitted_work_only(make_simulator: SimulatorFactory) -> None:
    """close_input() stops reading; what was already submitted still completes."""
    sim = await make_simulator(SimulatorConfig(requests_per_second=None, latency=0.05))
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=4) as s:
        stream = s.map(prompts(100), window=8)
        assert isinstance(stream, OutcomeStream)
        first = await anext(stream)
        stream.close_input()
        rest = [o async for o in stream]
    assert first.ok and all(o.ok for o in rest)
    assert 1 + len(rest) <= 1 + 8
    assert sim.stats.accepted == 1 + len(rest)


async def test_cancel_drops_unfinished_jobs(make_simulator: SimulatorFactory) -> None:
    """cancel() ends the stream: finished outcomes still come out, unfinished jobs are dropped."""
    sim = await make_simulator(SimulatorConfig(requests_per_second=None, latency=5.0))
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=2) as s:
        stream = s.map(prompts(10), window=4)
        assert isinstance(stream, OutcomeStream)
        task = asyncio.create_task(anext(stream))
        await until(lambda: sim.stats.in_flight >= 1)
        stream.cancel()
        with pytest.raises(StopAsyncIteration):
            await task
        assert s.statistics().queued == 0
        await s.aclose(cancel=True)


async def test_drainable_transport_holds_new_calls_and_reports_idle(
    make_simulator: SimulatorFactory,
) -> None:
    """After drain(), calls on the wire finish, wait_idle() returns, and nothing new is sent."""
    from grok_scheduler import AiohttpTransport

    sim = await make_simulator(SimulatorConfig(requests_per_second=None, latency=0.1))
    transport = DrainableTransport(
        AiohttpTransport(base_url=sim.base_url, api_key=KEY, max_connections=2)
    )
    # A limit given: a model with unknown limits would pace its first calls (the first-contact
    # ramp), and this test needs both workers to take the next jobs at once.
    async with Scheduler(transport=transport, max_concurrency=2, requests_per_second=1000) as s:
        futures = [s.submit_nowait(p) for p in prompts(6)]
        await until(lambda: transport.sending == 2)
        await transport.wait_idle()
        assert transport.sending == 0
        await spin()
        # Both workers picked the next jobs, but those are held, not sent: every request the
        # server saw was answered, and the held ones never reached it.
        assert s.statistics().in_flight == 2
        assert transport.sending == 0
        answered = sum(f.done() for f in futures)
        assert 2 <= answered <= 4
        assert sim.stats.requests == answered
        for future in futures:
            future.cancel()
        await s.aclose(cancel=True)
