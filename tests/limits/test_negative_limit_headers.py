"""Negative rate-limit header values neither fail jobs nor pause or resize the limiter.

| input                                   | documented behaviour                                |
|-----------------------------------------|-----------------------------------------------------|
| negative x-ratelimit-remaining-*        | ignored: the job succeeds, the pool is not paused   |
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fakes import Server, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    TransportResponse,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> TransportResponse:
    return TransportResponse(status, body, headers or {})


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining-requests": "-5", "x-ratelimit-reset-requests": "1s"},
        {"x-ratelimit-remaining-tokens": "-100000", "x-ratelimit-limit-tokens": "-1"},
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "-30"},
        {"RateLimit": '"requests";r=-3;t=-1', "RateLimit-Policy": '"requests";q=-10;w=0'},
    ],
)
async def test_negative_rate_limit_headers_are_ignored(
    clock: FakeClock, headers: dict[str, str]
) -> None:
    """Negative remaining/limit/reset values neither fail jobs nor pause or resize the pool."""
    body = ok().body

    def answer(_body: object) -> TransportResponse:
        return _raw(200, body, headers)

    server = Server(clock, latency=0.01, answer=answer)
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(5)]
        await _settle(clock, *futures, limit=5.0)
        state = scheduler.statistics().limiter
    assert all(f.result().attempts == 1 for f in futures)
    assert state is not None
    assert state.requests_per_second == 10
    assert state.paused_for == 0.0
