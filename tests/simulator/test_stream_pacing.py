"""Streams are paced as a server streams: first byte early, chunks over the rest of the latency."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from grok_scheduler import FakeClock
from grok_scheduler.simulator import SimulatorConfig, VirtualServer
from grok_scheduler.simulator._latency import stream_pacing

START = 1000.0


def chat(stream: bool) -> dict[str, Any]:
    """A chat body; the simulator answers it with 16 tokens (18 chunks when streamed)."""
    body: dict[str, Any] = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}
    return body | {"stream": True} if stream else body


@pytest.mark.parametrize(
    ("ttft", "delay", "chunks", "first"),
    [
        (None, 4.0, 11, 0.5),  # a quarter of 4 s is over the 0.5 s cap
        (None, 0.2, 11, 0.05),  # a fast call: a quarter of its latency
        (2.0, 4.0, 11, 2.0),  # configured
        (10.0, 4.0, 11, 4.0),  # never after the whole latency
        (None, 4.0, 1, 4.0),  # a single chunk comes when the answer would
    ],
)
def test_pacing_table(ttft: float | None, delay: float, chunks: int, first: float) -> None:
    """The first chunk at the time to first token; the last one exactly at the latency."""
    config = SimulatorConfig(stream_ttft=ttft)
    got_first, gap = stream_pacing(config, delay, chunks)
    assert got_first == pytest.approx(first)
    assert got_first + gap * (chunks - 1) == pytest.approx(delay)


def test_stream_ttft_is_validated() -> None:
    """A negative time to first token is refused."""
    with pytest.raises(ValueError, match="stream_ttft"):
        SimulatorConfig(stream_ttft=-1.0).validate()


async def test_virtual_stream_sends_its_first_byte_early_and_ends_at_the_latency() -> None:
    """4 s latency: headers and first chunk at 0.5 s, the rest spread until 4 s."""
    clock = FakeClock(START)
    server = VirtualServer(SimulatorConfig(latency=4.0), now=clock.now, sleep=clock.sleep)
    task = asyncio.ensure_future(server.respond("chat/completions", chat(stream=True)))
    await clock.advance(0.49)
    assert not task.done()
    await clock.advance(0.01)
    response = task.result()
    assert response.status == 200 and len(response.chunks) > 2
    arrivals: list[float] = []

    async def read() -> None:
        async for _chunk in server.chunks(response):
            arrivals.append(clock.now() - START)

    await clock.run_until_done(asyncio.ensure_future(read()), limit=10.0)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert arrivals[0] == pytest.approx(0.5) and arrivals[-1] == pytest.approx(4.0)
    assert max(gaps) == pytest.approx(min(gaps))


async def test_plain_answer_and_handle_still_take_the_whole_latency() -> None:
    """A non-streamed answer, and a stream read through handle, arrive at the latency."""
    clock = FakeClock(START)
    server = VirtualServer(SimulatorConfig(latency=4.0), now=clock.now, sleep=clock.sleep)
    plain = asyncio.ensure_future(server.handle("chat/completions", chat(stream=False)))
    streamed = asyncio.ensure_future(server.handle("chat/completions", chat(stream=True)))
    await clock.advance(3.99)
    assert not plain.done() and not streamed.done()
    await clock.run_until_done(asyncio.gather(plain, streamed), limit=0.02)
    assert plain.result()[0] == 200 and streamed.result()[1].endswith(b"data: [DONE]\n\n")
