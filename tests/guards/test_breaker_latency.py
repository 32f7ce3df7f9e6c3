"""The breaker at LLM latencies: failures come back at once, successes after seconds.

Calls still in flight count as not failed, so a healthy server whose answers take 4 s is not
declared down by its fast 503s; a server that fails everything still opens the breaker.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fakes import TEST_KEY, error, ok

from grok_scheduler import FakeClock, MockTransport, RetryPolicy, Scheduler, TransportResponse


async def _run(
    failing: float, latency: float, jobs: int = 600, concurrency: int = 200
) -> tuple[list[str], Scheduler]:
    clock = FakeClock()
    rng = random.Random(3)
    transitions: list[str] = []

    async def server(path: str, body: dict[str, Any]) -> TransportResponse:
        if rng.random() < failing:
            return error(503, "The service is currently unavailable", "unavailable")
        await clock.sleep(latency)
        return ok()

    scheduler = Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockTransport(server, clock=clock),
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=20),
        rng=random.Random(0),
    )
    scheduler._breaker.on_transition(lambda _old, new: transitions.append(new))
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
    return transitions, scheduler


async def test_fast_failures_do_not_open_the_breaker_while_slow_answers_are_in_flight() -> None:
    """30% fast 503s against 4 s answers with 200 calls in flight: the breaker stays closed."""
    transitions, _ = await _run(failing=0.3, latency=4.0)
    assert "open" not in transitions


async def test_a_server_failing_everything_still_opens_the_breaker() -> None:
    """Every call a fast 503: nothing is in flight for long, so the breaker opens."""
    transitions, _ = await _run(failing=1.0, latency=4.0, jobs=40)
    assert "open" in transitions
