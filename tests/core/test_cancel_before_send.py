"""A job cancelled before it is sent never reaches the server and takes no credit (issue 13/1).

``fut = submit_nowait(p); fut.cancel()`` with no await in between: the future's done-callback
runs one loop step later, after a waiting worker was already woken for the job. The gate must go
by the future itself, before and after it takes credit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fakes import TEST_KEY, Server, make_scheduler, ok

from grok_scheduler import FakeClock, LocalLimiter, MockTransport, Scheduler, TransportResponse

PAIRS = 20


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_cancelled_at_once_is_never_sent_on_a_real_loop() -> None:
    """20 pairs of submit_nowait + cancel on the real loop and clock: the server sees none."""
    sent: list[str] = []

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        sent.append(str(body["messages"][-1]["content"]))
        return ok()

    async with Scheduler(
        api_key=TEST_KEY, transport=MockTransport(handler), max_concurrency=4
    ) as scheduler:
        for i in range(PAIRS):
            future = scheduler.submit_nowait(f"doomed {i}")
            future.cancel()
            # Let the worker woken by the submit reach the gate before the next pair.
            for _ in range(5):
                await asyncio.sleep(0)
        await asyncio.wait_for(scheduler.submit("alive"), timeout=5.0)
        stats = scheduler.statistics()
    assert sent == ["alive"]
    assert stats.cancelled == PAIRS
    assert stats.dispatched == 1
    assert stats.completed == 1


async def test_cancelled_at_once_takes_no_credit_in_virtual_time(clock: FakeClock) -> None:
    """Virtual time stands still: after 20 cancelled pairs the limiter holds what it held."""
    server = Server(clock, latency=0.0)
    async with make_scheduler(clock, server, requests_per_second=5) as scheduler:
        before = scheduler.statistics().limiter
        assert before is not None and before.requests_available is not None
        for i in range(PAIRS):
            future = scheduler.submit_nowait(f"doomed {i}")
            future.cancel()
            await clock.settle()
        after = scheduler.statistics()
        assert after.limiter is not None
        assert after.limiter.requests_available == pytest.approx(before.requests_available)
        assert after.cancelled == PAIRS
        assert after.dispatched == 0
        assert after.queued == 0
    assert server.prompts == []


class _AwaitingLimiter(LocalLimiter):
    """Credit that takes a round trip to grant (as Redis does): the job can be cancelled then."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(requests_per_second=5, tokens_per_minute=None, now=clock.now())
        self.clock = clock
        self.before_grant: Callable[[], None] = lambda: None

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        await self.clock.sleep(0.01)
        # A cancel in the same loop step as the grant: its done-callback has not run yet.
        self.before_grant()
        return self.try_acquire(tokens, self.clock.now())


async def test_cancelled_while_credit_is_granted_is_refunded(clock: FakeClock) -> None:
    """Cancelled while the gate awaits the limiter: not sent, and the credit goes back."""
    server = Server(clock, latency=0.0)
    limiter = _AwaitingLimiter(clock)
    async with make_scheduler(clock, server, limiter=limiter) as scheduler:
        # Before the job, so the refill between here and the check below is known.
        level = limiter.state(clock.now()).requests_available
        assert level is not None
        future = scheduler.submit_nowait("doomed")
        limiter.before_grant = future.cancel
        await clock.advance(0.01)
        await clock.settle()
        state = limiter.state(clock.now())
        assert state.requests_available == pytest.approx(min(4.5, level + 0.01 * 5))
        assert scheduler.statistics().cancelled == 1
        assert scheduler.statistics().dispatched == 0
    assert server.prompts == []
