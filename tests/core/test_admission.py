"""Regressions for defects a review reproduced in the core, each in virtual time."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from fakes import Server, chat_body, error, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    LocalLimiter,
    MockTransport,
    Priority,
    QuotaExhaustedError,
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


class _FlakyLimiter(LocalLimiter):
    """Raises from acquire a few times, as a custom limiter's backend might."""

    fails = 2

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        if self.fails:
            self.fails -= 1
            raise ConnectionError("limiter backend blip")
        return await super().acquire(tokens, now, priority)


async def test_a_failing_limiter_does_not_kill_the_workers(clock: FakeClock) -> None:
    """acquire() raising twice: every job still completes."""
    server = Server(clock)
    limiter = _FlakyLimiter(requests_per_second=10, tokens_per_minute=None, now=0.0)
    async with make_scheduler(clock, server, max_concurrency=2, limiter=limiter) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(3)]
        await clock.run_until_done(asyncio.gather(*futures), limit=60.0)
    assert all(f.exception() is None for f in futures)


async def test_an_expired_head_job_frees_the_gate_at_once(clock: FakeClock) -> None:
    """A job expiring while it waited for tokens lets the smaller job behind it go right away."""

    def answer(body: dict[str, Any]) -> TransportResponse:
        big = body.get("max_tokens") == 5000
        return TransportResponse(
            200, json.dumps(chat_body("ok", prompt_tokens=5000 if big else 10)).encode(), {}
        )

    server = Server(clock, answer=answer)
    async with make_scheduler(clock, server, max_concurrency=4, tokens_per_minute=6000) as sched:
        big = sched.submit_nowait("big", max_tokens=5000)
        await clock.run_until_done(big)
        await clock.advance(0.1)
        sched.submit_nowait("A", priority=Priority.HIGH, max_tokens=3000, deadline=1.0)
        small = sched.submit_nowait("C", max_tokens=100)
        await clock.run_until_done(small)
    sent_small = next(t for t, p in server.sent if p == "C")
    assert sent_small < 2.0


async def test_a_due_retry_of_urgent_work_is_not_held_for_the_window(clock: FakeClock) -> None:
    """An urgent job's retry goes when its backoff ends, not when the urgent window ends."""
    failed: set[str] = set()
    sent: list[tuple[float, str]] = []

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = body["messages"][-1]["content"]
        sent.append((clock.now(), prompt))
        if prompt == "H" and prompt not in failed:
            failed.add(prompt)
            await clock.sleep(0.1)
            return error(500, "Internal error", code="Internal error")
        await clock.sleep(100.0 if prompt.startswith("slow") else 0.1)
        return ok(prompt)

    async with _scheduler(clock, handler, max_concurrency=10, urgent_share=0.1) as scheduler:
        warm = scheduler.submit_nowait("warm-up")
        await clock.run_until_done(warm)
        high = scheduler.submit_nowait("H", priority=Priority.HIGH)
        for i in range(12):
            scheduler.submit_nowait(f"slow{i}")
        await clock.run_until_done(high, limit=200.0)
        await scheduler.aclose(cancel=True)
    retried_at = [t for t, p in sent if p == "H"][1]
    assert retried_at < 5.0


async def test_an_urgent_job_behind_an_aged_one_takes_the_free_slot(clock: FakeClock) -> None:
    """A HIGH job gets the reserved slot at once even when an aged NORMAL job heads the queue."""
    sent: list[tuple[float, str]] = []

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = body["messages"][-1]["content"]
        sent.append((clock.now(), prompt))
        await clock.sleep(1000.0 if prompt.startswith("slow") else 0.1)
        return ok(prompt)

    async with _scheduler(
        clock, handler, max_concurrency=10, urgent_share=0.1, urgent_window=120.0
    ) as scheduler:
        warm = scheduler.submit_nowait("warm-up")
        await clock.run_until_done(warm)
        scheduler.submit_nowait("U", priority=Priority.HIGH)
        for i in range(9):
            scheduler.submit_nowait(f"slow{i}")
        scheduler.submit_nowait("N")
        await clock.advance(70.0 - clock.now())
        high = scheduler.submit_nowait("H", priority=Priority.HIGH)
        await clock.run_until_done(high, limit=5000.0)
        await scheduler.aclose(cancel=True)
    assert next(t for t, p in sent if p == "H") == pytest.approx(70.0)


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
