"""Streaming through the transport and the gateway: the server's SSE reaches the SDK as a stream.

Each stream is a scheduled job (queue, credit, retries before the first frame); its frames pass
through unchanged, so openai-python parses its own chunks. A stream refused before any frame
comes out as the SDK's usual exception; an error after the first frame as its stream error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from grok_scheduler import Scheduler
from grok_scheduler.simulator import Simulator

# The simulator, scheduler, gateway and client fixtures.
pytest_plugins = ["gateway_support"]

MESSAGES: Any = [{"role": "user", "content": "stream me an answer please"}]


async def _read(stream: Any) -> tuple[str, list[Any]]:
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


async def test_chat_stream_passes_through(
    client: openai.AsyncOpenAI, sim: Simulator, scheduler: Scheduler
) -> None:
    """A streamed chat call arrives chunk by chunk, the same text as unstreamed, one request."""
    stream = await client.chat.completions.create(
        model="grok-4.3", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, chunks = await _read(stream)
    whole = await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)
    assert len(chunks) > 3 and text == whole.choices[0].message.content
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert sim.stats.requests == 2
    stats = scheduler.statistics()
    # Scheduled: both went through the queue and were settled like any job.
    assert (stats.submitted, stats.completed, stats.in_flight) == (2, 2, 0)
    assert stats.total_tokens >= 2 * chunks[-1].usage.total_tokens


async def test_stream_without_usage_option_ends_cleanly(client: openai.AsyncOpenAI) -> None:
    """Without stream_options the body goes as built, and the stream still ends at [DONE]."""
    stream = await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)
    text, chunks = await _read(stream)
    assert text and chunks[-1].choices[0].finish_reason == "stop"


async def test_streamed_tool_call_passes_through(client: openai.AsyncOpenAI) -> None:
    """Tool-call deltas (no text at all) reach the SDK unchanged."""
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    stream = await client.chat.completions.create(
        model="grok-4.3", messages=MESSAGES, tools=tools, stream=True
    )
    _, chunks = await _read(stream)
    calls = [c for chunk in chunks for c in chunk.choices[0].delta.tool_calls or []]
    assert [call.function.name for call in calls] == ["lookup"]


async def test_stream_429_before_first_frame_is_rate_limit_error(
    client: openai.AsyncOpenAI, sim: Simulator
) -> None:
    """With the retries spent, a 429 before any frame is the SDK's RateLimitError."""
    sim.fail_next("capacity_429")
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)


async def test_error_frame_first_is_the_status_it_stands_for(
    client: openai.AsyncOpenAI, sim: Simulator
) -> None:
    """An error frame before any content is answered as its status (503 at capacity)."""
    sim.fail_next("stream_error_first")
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 503


async def test_error_mid_stream_is_the_sdks_stream_error(
    client: openai.AsyncOpenAI, sim: Simulator, scheduler: Scheduler
) -> None:
    """After frames went out the status cannot change: the SDK raises from the error frame."""
    sim.fail_next("stream_error_mid")
    stream = await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            received.append(chunk)
    assert received  # the frames before the error were delivered
    assert scheduler.statistics().failed == 1


async def test_leaving_a_stream_early_closes_the_call(
    client: openai.AsyncOpenAI, sim: Simulator, scheduler: Scheduler
) -> None:
    """Closing the SDK's stream mid-answer (the server hangs) closes the upstream call too."""
    sim.fail_next("stream_hang_mid")
    stream = await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)
    async for _chunk in stream:
        break
    assert scheduler.statistics().in_flight == 1
    await stream.close()
    # The gateway learns of the closed connection from the socket: poll, bounded.
    for _ in range(400):
        if scheduler.statistics().in_flight == 0 and sim.stats.in_flight == 0:
            break
        await asyncio.sleep(0.005)
    stats = scheduler.statistics()
    assert (stats.in_flight, stats.queued, sim.stats.in_flight) == (0, 0, 0)
