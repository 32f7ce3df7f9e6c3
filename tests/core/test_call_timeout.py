"""The scheduler-wide per-call timeout: a call that never answers is given up."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fakes import Server, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    RetryPolicy,
    SchedulerError,
)
from grok_scheduler._guards._timeouts import CallTimeouts


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


async def test_a_call_sent_under_the_prior_is_cut_at_the_bound_learned_since(
    clock: FakeClock,
) -> None:
    """The first call hangs; it was sent before anything was known, under the prior (30 s +
    0.1 s a token + 1 s = 37.4 s for 64 tokens). Eight quick answers later the model's bound
    is a few seconds, and the hung call is cut at that bound, not at the prior; its retry
    answers."""
    server = Server(clock, latency=0.2, answer=lambda body: ok("x", completion_tokens=8))
    server.script.append(None)  # the first call sent hangs forever
    async with make_scheduler(clock, server, max_concurrency=16) as scheduler:
        hung = scheduler.submit_nowait("hung", max_tokens=64)
        await clock.advance(1.5)  # first contact: one call alone, up to 1 s
        quick = [scheduler.submit_nowait(f"quick {i}", max_tokens=64) for i in range(8)]
        await _settle(clock, hung, *quick, limit=60.0)
    assert hung.result().attempts == 2
    sent = [at for at, prompt in server.sent if prompt == "hung"]
    learned = CallTimeouts()
    for _ in range(8):
        learned.observe(0.2, 8)
    bound = learned.timeout_for(64)  # 2 * (0.2 + 0.025 * 56) + 1 = 4.2 s
    assert bound == pytest.approx(4.2)
    # Cut at the learned bound, then retried after a backoff of at most 0.5 s.
    assert sent[0] + bound <= sent[1] <= sent[0] + bound + 0.5 + 1e-6
