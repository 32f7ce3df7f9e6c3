"""The real langchain-xai ``ChatXAI`` through the transport and the gateway, the simulator behind.

``ainvoke``, ``astream``, ``with_structured_output`` (function calling and json_schema) and
``bind_tools``: each call goes through the scheduler, streams arrive as chunks, structured
output parses. Skipped when langchain-xai is not installed (it is not in the test extra).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from gateway_keys import CLIENT_KEY, KEY
from pydantic import BaseModel

from grok_scheduler import AsyncHTTPTransport, Scheduler
from grok_scheduler.simulator import Simulator

# The simulator, scheduler, gateway and client fixtures.
pytest_plugins = ["gateway_support"]

langchain_xai = pytest.importorskip("langchain_xai")


class Joke(BaseModel):
    """A joke, as structured output."""

    setup: str
    punchline: str
    rating: int


@pytest_asyncio.fixture(params=["transport", "gateway"])
async def chat(
    request: pytest.FixtureRequest, sim: Simulator, scheduler: Scheduler, gateway_url: str
) -> AsyncIterator[Any]:
    """ChatXAI with the scheduler as its HTTP layer, or pointed at the gateway."""
    if request.param == "transport":
        http = httpx2.AsyncClient(transport=AsyncHTTPTransport(scheduler), timeout=None)
        model = langchain_xai.ChatXAI(
            model="grok-4.3",
            xai_api_key=KEY,
            xai_api_base=sim.base_url,
            http_async_client=http,
            max_retries=0,
        )
    else:
        model = langchain_xai.ChatXAI(
            model="grok-4.3", xai_api_key=CLIENT_KEY, xai_api_base=gateway_url, max_retries=0
        )
    yield model
    # ChatXAI never closes the clients it made; unclosed sockets would fail the suite.
    # (It makes two AsyncOpenAI: the root one and the one behind ``async_client``.)
    await model.async_client._client.close()
    await model.root_async_client.close()
    model.root_client.close()


async def test_ainvoke(chat: Any, sim: Simulator, scheduler: Scheduler) -> None:
    """ainvoke answers through the scheduler: one job, one upstream request."""
    message = await chat.ainvoke("tell me about queues")
    assert "queues" in message.content
    assert message.usage_metadata["total_tokens"] > 0
    assert scheduler.statistics().completed == 1 and sim.stats.requests == 1


async def test_astream(chat: Any, scheduler: Scheduler) -> None:
    """astream yields several chunks that add up to the answer, usage on the last."""
    chunks = [chunk async for chunk in chat.astream("stream about queues")]
    assert len(chunks) > 3
    text = "".join(str(chunk.content) for chunk in chunks)
    assert "queues" in text
    assert any(chunk.usage_metadata for chunk in chunks)
    assert scheduler.statistics().completed == 1


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
async def test_structured_output(chat: Any, method: str) -> None:
    """with_structured_output returns the schema's object, by tool call or by JSON schema."""
    joke = await chat.with_structured_output(Joke, method=method).ainvoke("a joke")
    assert isinstance(joke, Joke) and joke.setup and isinstance(joke.rating, int)


async def test_bind_tools(chat: Any) -> None:
    """bind_tools gives a tool call with arguments for the tool's parameters."""

    def lookup(city: str, days: int) -> str:
        """Weather of a city for some days."""
        return city * days

    message = await chat.bind_tools([lookup]).ainvoke("weather in Paris?")
    assert [call["name"] for call in message.tool_calls] == ["lookup"]
    assert set(message.tool_calls[0]["args"]) == {"city", "days"}
