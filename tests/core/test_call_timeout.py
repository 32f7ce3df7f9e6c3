"""The scheduler-wide per-call timeout: a call that never answers is given up."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fakes import Server, make_scheduler

from grok_scheduler import (
    FakeClock,
    RetryPolicy,
    SchedulerError,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


# Each test below first failed against the core (reported from issue 7, fixed in c3206e0).


async def test_the_scheduler_wide_timeout_bounds_each_call(clock: FakeClock) -> None:
    """Scheduler(timeout=0.5): a call that never answers is given up after 0.5 s."""
    server = Server(clock, latency=0.01)
    server.script.append(None)  # hang forever
    retry = RetryPolicy(max_attempts=1)
    async with make_scheduler(clock, server, timeout=0.5, retry=retry) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=5.0)
        assert isinstance(future.exception(), SchedulerError)
        await scheduler.aclose(cancel=True)
