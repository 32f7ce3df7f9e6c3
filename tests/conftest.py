"""Shared fixtures: a local xAI-compatible simulator on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from hypothesis import settings

from grok_scheduler.simulator import Simulator, SimulatorConfig

# A loaded 2-core machine can stall one example past hypothesis's 200 ms default deadline:
# the properties are about values, never about time.
settings.register_profile("grok-scheduler", deadline=None)
settings.load_profile("grok-scheduler")

SimulatorFactory = Callable[[SimulatorConfig | None], Awaitable[Simulator]]


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[Simulator]:
    """A started simulator with no latency and no rate limit."""
    sim = Simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest_asyncio.fixture
async def make_simulator() -> AsyncIterator[SimulatorFactory]:
    """``await make_simulator(config)`` returns a started simulator; all stop at teardown."""
    started: list[Simulator] = []

    async def make(config: SimulatorConfig | None = None) -> Simulator:
        sim = Simulator(config)
        started.append(sim)
        await sim.start()
        return sim

    try:
        yield make
    finally:
        for sim in started:
            await sim.stop()
