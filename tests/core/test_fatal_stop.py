"""A fatal stop (billing exhausted) fails the jobs still in flight at once, never re-sending them
(a regression a review reproduced in the core, in virtual time)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from fakes import error, ok

from grok_scheduler import (
    FakeClock,
    MockTransport,
    QuotaExhaustedError,
    Scheduler,
    TransportResponse,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


async def test_a_job_in_flight_during_a_fatal_stop_is_not_sent_again(clock: FakeClock) -> None:
    """After billing exhaustion, a 503 that comes back later fails at once, not after retries."""

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = body["messages"][-1]["content"]
        if prompt == "Y":
            await clock.sleep(0.1)
            return error(
                429,
                "Your team has used all available credits or reached its monthly spending limit.",
            )
        if prompt == "X":
            await clock.sleep(0.5)
            return error(503, "The service is currently unavailable")
        await clock.sleep(0.1)
        return ok(prompt)

    transport = MockTransport(handler, clock=clock)
    async with Scheduler(
        api_key="xai-test",
        clock=clock,
        transport=transport,
        max_concurrency=4,
        rng=random.Random(0),
    ) as scheduler:
        warm = scheduler.submit_nowait("warm-up")
        await clock.run_until_done(warm)
        x = scheduler.submit_nowait("X")
        y = scheduler.submit_nowait("Y")
        await clock.run_until_done(asyncio.gather(x, y, return_exceptions=True))
    assert isinstance(x.exception(), QuotaExhaustedError)
    assert transport.calls == 3
