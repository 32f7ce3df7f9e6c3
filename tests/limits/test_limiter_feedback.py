"""What the scheduler feeds its limiter: hostile limit headers and usage are bounded, and a
lowered pace never makes a fitting job too large (regressions a review reproduced, in virtual
time)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from fakes import Server, chat_body, error, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    MockTransport,
    Scheduler,
    TransportResponse,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


def _scheduler(clock: FakeClock, handler: Any, **options: Any) -> Scheduler:
    return Scheduler(
        api_key="xai-test",
        clock=clock,
        transport=MockTransport(handler, clock=clock),
        rng=random.Random(0),
        **options,
    )


async def test_an_overflowing_limit_header_is_ignored(clock: FakeClock) -> None:
    """x-ratelimit-limit-tokens: 1e308 neither fails the answered job nor breaks later 429s."""
    calls = {"n": 0}

    def answer(body: dict[str, Any]) -> TransportResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            return TransportResponse(
                200, json.dumps(chat_body("ok")).encode(), {"x-ratelimit-limit-tokens": "1e308"}
            )
        if calls["n"] == 3:
            return error(429, "Rate limit exceeded: requests per second")
        return ok("ok")

    server = Server(clock, answer=answer)
    async with make_scheduler(
        clock, server, max_concurrency=1, tokens_per_minute=100_000, requests_per_second=10
    ) as scheduler:
        for i in range(3):
            future = scheduler.submit_nowait(f"p{i}")
            await clock.run_until_done(future)
            assert future.exception() is None
        assert scheduler.statistics().limiter.tokens_per_minute == pytest.approx(100_000)  # type: ignore[union-attr]


async def test_absurd_usage_does_not_stall_the_limiter(clock: FakeClock) -> None:
    """A 200 claiming 10**400 tokens is accounted as at most the cap; the next job still runs."""
    calls = {"n": 0}

    def answer(body: dict[str, Any]) -> TransportResponse:
        calls["n"] += 1
        payload = chat_body("ok")
        if calls["n"] == 1:
            payload["usage"]["total_tokens"] = 10**400
        return TransportResponse(200, json.dumps(payload).encode(), {})

    server = Server(clock, answer=answer)
    async with make_scheduler(clock, server, tokens_per_minute=100_000) as scheduler:
        first = scheduler.submit_nowait("first")
        await clock.run_until_done(first)
        second = scheduler.submit_nowait("second")
        await clock.run_until_done(second, limit=120.0)
    assert first.exception() is None and second.exception() is None


async def test_a_cut_does_not_make_a_fitting_job_too_large(clock: FakeClock) -> None:
    """After a token 429 lowers the pace, a job within the configured limit is still accepted."""
    calls = {"n": 0}

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        calls["n"] += 1
        await clock.sleep(0.1)
        if calls["n"] == 2:
            return error(429, "Rate limit exceeded: tokens per minute")
        return ok("x")

    async with _scheduler(
        clock, handler, max_concurrency=2, tokens_per_minute=100_000
    ) as scheduler:
        big = scheduler.submit_nowait("big job", max_tokens=90_000)
        await clock.run_until_done(big)
        small = scheduler.submit_nowait("small")
        await clock.run_until_done(small)
        limiter = scheduler.statistics().limiter
        assert limiter is not None and limiter.tokens_per_minute is not None
        assert limiter.tokens_per_minute < 100_000
        again = scheduler.submit_nowait("big job again", max_tokens=90_000)
        await clock.run_until_done(again)
    assert again.exception() is None
