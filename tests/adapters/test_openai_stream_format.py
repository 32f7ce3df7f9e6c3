"""Cross-check of the simulator's stream format: the real openai-python client reads it.

If the SDK assembles the same text and usage from the simulator's stream as from its plain
answer, the streams the scheduler is tested against are shaped like the API's. An error frame
inside a 200 stream must surface in the SDK as its ``APIError``, as it does against xAI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio

from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-OPENAIstreamKEY0123456789abcd"
PROMPT = "tell me about the sea and the sky today"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=0.0, api_key=KEY)) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


async def test_chat_stream_reads_as_the_plain_answer(client: openai.AsyncOpenAI) -> None:
    """Chat chunks: the SDK's deltas join to the plain answer; the last chunk has its usage."""
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": PROMPT}
    ]
    plain = await client.chat.completions.create(model="grok-4", messages=messages)
    stream = await client.chat.completions.create(
        model="grok-4", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    parts: list[str] = []
    usage = None
    finish = None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(parts) == plain.choices[0].message.content
    assert finish == plain.choices[0].finish_reason
    assert usage is not None and plain.usage is not None
    assert usage.total_tokens == plain.usage.total_tokens


async def test_responses_stream_reads_as_the_plain_answer(client: openai.AsyncOpenAI) -> None:
    """Responses events: the SDK's text deltas and final response match a plain answer."""
    plain = await client.responses.create(model="grok-4", input=PROMPT)
    stream = await client.responses.create(model="grok-4", input=PROMPT, stream=True)
    deltas: list[str] = []
    final = None
    async for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            final = event.response
    assert final is not None
    assert "".join(deltas) == final.output_text == plain.output_text
    assert final.usage is not None and plain.usage is not None
    assert final.usage.total_tokens == plain.usage.total_tokens


@pytest.mark.parametrize("kind", ["stream_error_first", "stream_error_mid"])
async def test_an_error_frame_is_an_api_error_in_the_sdk(
    sim: Simulator, client: openai.AsyncOpenAI, kind: str
) -> None:
    """A flat {"code","error"} frame inside a 200 stream raises the SDK's APIError."""
    sim.fail_next(kind)
    stream = await client.chat.completions.create(
        model="grok-4", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
