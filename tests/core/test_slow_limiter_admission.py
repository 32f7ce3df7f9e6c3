"""Admission while the gate awaits a slow (shared, Redis-like) limiter: no job lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest
from fakes import Server, error, make_scheduler

from grok_scheduler import (
    FakeClock,
    LocalLimiter,
    Priority,
    Result,
    RetryPolicy,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


# Each test below first failed against the core (reported from issue 7, fixed in c3206e0).


class _SlowLimiter(LocalLimiter):
    """A LocalLimiter whose acquisition takes a round trip, as a shared (Redis) limiter's does."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(requests_per_second=None, tokens_per_minute=None, now=clock.now())
        self.clock = clock

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        await self.clock.sleep(0.01)
        return self.try_acquire(tokens, self.clock.now())


async def test_a_retry_due_during_acquisition_is_neither_lost_nor_duplicated(
    clock: FakeClock,
) -> None:
    """Both jobs end exactly once when a retry falls due while the gate awaits the limiter."""
    server = Server(clock, latency=0.0)
    server.script.append(error(500, "Internal error", code="Internal error"))
    retry = RetryPolicy(base_delay=0.002, max_delay=0.002, max_attempts=3)
    async with make_scheduler(
        clock, server, limiter=_SlowLimiter(clock), retry=retry, max_concurrency=1
    ) as scheduler:
        urgent = scheduler.submit_nowait("urgent", priority=Priority.CRITICAL)
        low = scheduler.submit_nowait("low", priority=Priority.LOW)
        with contextlib.suppress(TimeoutError):  # the lost job leaves nothing to wake
            await _settle(clock, urgent, low, limit=10.0)
        assert urgent.done() and isinstance(urgent.result(), Result)
        assert low.done() and isinstance(low.result(), Result)
        assert sorted(server.prompts) == ["low", "urgent", "urgent"]
        await scheduler.aclose(cancel=True)
