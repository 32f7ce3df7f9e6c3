"""A rate cut to its floor by an outage of 429s grows back once the server answers again.

The rate controller grows a cut rate only when the gate ticks it while waiting for that model's
credit; at 0.05 rps the credit wait is 20 s, so a gate that slept through it never ticked the
controller within its "limited recently" window and the rate stayed at the floor for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from fakes import TEST_KEY, error, ok

from grok_scheduler import FakeClock, MockTransport, RetryPolicy, Scheduler, TransportResponse

_RPS = 10.0
_LATENCY = 0.5
_OUTAGE = (30.0, 150.0)  # seconds after the start during which every call gets a bare 429


async def _run_outage() -> tuple[list[tuple[float, int]], float | None]:
    clock = FakeClock()
    start = clock.now()
    sent: list[tuple[float, int]] = []
    level, updated = [_RPS], [0.0]

    async def server(path: str, body: dict[str, Any]) -> TransportResponse:
        now = clock.now() - start
        level[0] = min(_RPS, level[0] + (now - updated[0]) * _RPS)
        updated[0] = now
        if _OUTAGE[0] <= now < _OUTAGE[1]:
            sent.append((now, 429))
            await clock.sleep(_LATENCY)
            return error(429, "Rate limit exceeded")  # names no dimension, no wait
        if level[0] >= 1.0:
            level[0] -= 1.0
            sent.append((now, 200))
            await clock.sleep(_LATENCY)
            return ok()
        sent.append((now, 429))
        return error(429, "Rate limit exceeded: requests per second")

    scheduler = Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockTransport(server, clock=clock),
        rng=random.Random(0),
        retry=RetryPolicy(max_attempts=1000),
    )
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(2600)]
        # Long enough to see the recovery; the jobs need not all finish.
        with_timeout = asyncio.gather(*futures, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await clock.run_until_done(with_timeout, limit=_OUTAGE[1] + 90.0)
        learned = scheduler.statistics().models["grok-4"].limiter.requests_per_second
        await scheduler.aclose(cancel=True)
    with_timeout.cancel()
    return sent, learned


async def test_a_rate_collapsed_by_an_outage_recovers() -> None:
    """After 2 min of bare 429s at 0.5 s latency, the rate is back near the limit within 90 s."""
    sent, learned = await _run_outage()
    after = [at for at, status in sent if _OUTAGE[1] + 70.0 <= at < _OUTAGE[1] + 90.0]
    # Stuck at the 0.05 rps floor this window holds one call; recovered, about 200.
    assert len(after) / 20.0 >= 0.7 * _RPS, f"{len(after) / 20.0:.2f} calls/s, rate {learned}"
