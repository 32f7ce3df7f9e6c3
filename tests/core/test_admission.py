"""Admission at the gate under failure: a failing limiter, expiring heads, urgent work and its
retries (regressions a review reproduced in the core, each in virtual time)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from fakes import Server, chat_body, error, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    LimiterError,
    LocalLimiter,
    MockTransport,
    Priority,
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


class _BrokenLimiter(LocalLimiter):
    """A limiter whose backend is down for good."""

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        raise ConnectionError("limiter backend down")


async def test_a_failing_limiter_holds_back_only_its_own_model(clock: FakeClock) -> None:
    """grok-4's limiter raising on every acquire never stops grok-3-mini's jobs; after three
    failures in a row grok-4's queued jobs fail with LimiterError, unsent, instead of hanging."""
    server = Server(clock)

    def limiter_for(model: str) -> LocalLimiter:
        kind = _BrokenLimiter if model == "grok-4" else LocalLimiter
        return kind(requests_per_second=None, tokens_per_minute=None, now=clock.now())

    async with make_scheduler(clock, server, limiter=limiter_for) as scheduler:
        stuck = [scheduler.submit_nowait(f"stuck {i}", model="grok-4") for i in range(2)]
        others = [scheduler.submit_nowait(f"m{i}", model="grok-3-mini") for i in range(3)]
        await clock.run_until_done(asyncio.gather(*others), limit=60.0)
        await clock.run_until_done(asyncio.gather(*stuck, return_exceptions=True), limit=5.0)
        assert sorted(server.prompts) == ["m0", "m1", "m2"]
        for job in stuck:
            error = job.exception()
            assert isinstance(error, LimiterError), error
            assert isinstance(error.__cause__, ConnectionError)
        # The limiter may come back: a later job tries it afresh, and fails only the same way.
        later = scheduler.submit_nowait("later", model="grok-4")
        await clock.run_until_done(asyncio.gather(later, return_exceptions=True), limit=5.0)
        assert isinstance(later.exception(), LimiterError)


async def test_a_limiter_that_recovers_before_three_failures_sends_the_job(
    clock: FakeClock,
) -> None:
    """Two failures in a row, then credit: the job is sent (only a third failure fails it)."""
    server = Server(clock)
    failures = [2]

    class _FlakyLimiter(LocalLimiter):
        async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
            if failures[0] > 0:
                failures[0] -= 1
                raise ConnectionError("limiter backend blinked")
            return await super().acquire(tokens, now, priority)

    limiter = _FlakyLimiter(requests_per_second=None, tokens_per_minute=None, now=clock.now())
    async with make_scheduler(clock, server, limiter=limiter) as scheduler:
        job = scheduler.submit_nowait("flaky")
        await clock.run_until_done(job, limit=5.0)
    assert server.prompts == ["flaky"]


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
