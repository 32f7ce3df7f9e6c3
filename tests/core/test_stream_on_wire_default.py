"""stream_on_wire=None (the default): a submitted job streams on the wire when a hung call of it
sent plain would be held long, and goes plain when its model's calls are short and quick."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fakes import TEST_KEY

from grok_scheduler import FakeClock, Scheduler
from grok_scheduler._transports._streaming import MockStream, MockStreamTransport
from grok_scheduler.simulator import SimulatorConfig, VirtualServer


async def _streamed_flags(
    *, latency: float, max_tokens: int | None, calls: int, stream_on_wire: bool | None = None
) -> tuple[list[bool], list[str]]:
    """Submit ``calls`` jobs one after another; whether each went out as a stream, and texts."""
    clock = FakeClock(start=0.0)
    server = VirtualServer(SimulatorConfig(latency=latency), now=clock.now, sleep=clock.sleep)
    streamed: list[bool] = []

    async def answer(path: str, body: dict[str, Any]) -> MockStream:
        streamed.append(bool(body.get("stream")))
        response = await server.respond(path, body)
        return MockStream(response.status, server.chunks(response), response.headers)

    texts: list[str] = []
    async with Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockStreamTransport(answer),
        rng=random.Random(0),
        stream_on_wire=stream_on_wire,
    ) as scheduler:
        for i in range(calls):
            future = scheduler.submit_nowait(f"job {i}", max_tokens=max_tokens)
            await clock.run_until_done(future, limit=600.0)
            texts.append(future.result().text)
    return streamed, texts


async def test_quick_short_calls_go_plain_once_the_model_is_known() -> None:
    """50 ms calls capped at 16 tokens: streamed while nothing is known (the prior is over
    30 s), plain from the eighth answer on (their bound is the 2 s minimum)."""
    streamed, texts = await _streamed_flags(latency=0.05, max_tokens=16, calls=12)
    assert streamed == [True] * 8 + [False] * 4
    assert all(text.startswith("Simulated") for text in texts)


async def test_slow_calls_keep_streaming() -> None:
    """4 s calls: a plain hang would be held over twice that, so every call streams."""
    streamed, _ = await _streamed_flags(latency=4.0, max_tokens=64, calls=12)
    assert streamed == [True] * 12


async def test_calls_without_max_tokens_keep_streaming() -> None:
    """No max_tokens: a plain call is bounded as if it may fill a context (up to 900 s)."""
    streamed, _ = await _streamed_flags(latency=0.05, max_tokens=None, calls=12)
    assert streamed == [True] * 12


@pytest.mark.parametrize("switch", [False, True])
async def test_the_switch_overrides_the_default(switch: bool) -> None:
    """stream_on_wire=False never streams (even under the prior), True always does."""
    streamed, _ = await _streamed_flags(
        latency=0.05, max_tokens=16, calls=10, stream_on_wire=switch
    )
    assert streamed == [switch] * 10

