"""The simulator answers openai-python as xAI does: catalogue, lookups, refusals, shapes.

A trial with openai-python and LangChain tripped on the simulator, not on xAI: grok-4 missing
from the list, lookups by id unknown, a role ``wizard`` and unknown models accepted, ``tools``
and structured output formats ignored. These tests hold each of them with the real SDK.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio

from grok_scheduler.simulator import Simulator, SimulatorConfig
from grok_scheduler.simulator._cli import add_simulate_parser, config_from_args
from grok_scheduler.simulator._shapes import example

KEY = "xai-SIMcompatKEY0123456789abcdef"
JOKE = {
    "title": "Joke",
    "type": "object",
    "properties": {
        "setup": {"type": "string"},
        "rating": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"$ref": "#/$defs/Kind"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["setup", "rating", "tags", "kind", "note"],
    "additionalProperties": False,
    "$defs": {"Kind": {"enum": ["pun", "story"]}},
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest_asyncio.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    config = SimulatorConfig(
        latency=0.0, requests_per_second=None, api_key=KEY, model_names=("grok-4", "grok-4.3")
    )
    async with (
        Simulator(config) as sim,
        openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0) as sdk,
    ):
        yield sdk


def _matches_joke(value: Any) -> None:
    assert set(value) == set(JOKE["required"])  # type: ignore[arg-type]
    assert isinstance(value["setup"], str) and isinstance(value["rating"], int)
    assert value["rating"] >= 1 and value["kind"] in ("pun", "story")
    assert isinstance(value["tags"], list) and all(isinstance(t, str) for t in value["tags"])
    assert value["note"] is None or isinstance(value["note"], str)


async def test_default_catalogue_lists_grok_4() -> None:
    """With no models configured, /v1/models lists grok-4, the scheduler's default model."""
    async with (
        Simulator(SimulatorConfig(latency=0.0, api_key=KEY)) as sim,
        openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0) as sdk,
    ):
        names = [model.id async for model in sdk.models.list()]
        assert "grok-4" in names and "grok-4.3" in names
        assert (await sdk.models.retrieve("grok-4")).id == "grok-4"


async def test_models_retrieve_known_and_unknown(client: openai.AsyncOpenAI) -> None:
    """models.retrieve returns the model, or xAI's 404 for a name it does not serve."""
    model = await client.models.retrieve("grok-4.3")
    assert (model.id, model.owned_by) == ("grok-4.3", "xai")
    with pytest.raises(openai.NotFoundError) as refused:
        await client.models.retrieve("grok-9")
    assert "grok-9 does not exist" in str(refused.value.body)


async def test_unknown_model_is_refused(client: openai.AsyncOpenAI) -> None:
    """A chat call to a model the team lacks is xAI's 404, not an answer."""
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="gpt-imaginary", messages=[{"role": "user", "content": "hi"}]
        )


async def test_responses_retrieve_and_delete(client: openai.AsyncOpenAI) -> None:
    """A stored response is found by id until deleted; unknown and unstored ids are 404."""
    created = await client.responses.create(model="grok-4", input="remember me")
    found = await client.responses.retrieve(created.id)
    assert found.id == created.id and found.output_text == created.output_text
    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
    unstored = await client.responses.create(model="grok-4", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)


async def test_unknown_role_is_refused(client: openai.AsyncOpenAI) -> None:
    """A role xAI does not know ('wizard') is refused with xAI's 422, on both endpoints."""
    bad: Any = [{"role": "wizard", "content": "abracadabra"}]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        await client.chat.completions.create(model="grok-4", messages=bad)
    assert "unknown variant `wizard`" in str(refused.value.body)
    with pytest.raises(openai.UnprocessableEntityError):
        await client.responses.create(model="grok-4", input=bad)
    ok = await client.chat.completions.create(
        model="grok-4",
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
    )
    assert ok.choices[0].message.content


async def test_tools_are_answered_with_a_tool_call(client: openai.AsyncOpenAI) -> None:
    """A chat call with tools gets a call of the chosen tool, its arguments per its schema."""
    tools: Any = [WEATHER_TOOL]
    answer = await client.chat.completions.create(
        model="grok-4", messages=[{"role": "user", "content": "weather in Paris?"}], tools=tools
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call: Any = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    none = await client.chat.completions.create(
        model="grok-4",
        messages=[{"role": "user", "content": "hi"}],
        tools=tools,
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content


async def test_streamed_tool_call(client: openai.AsyncOpenAI) -> None:
    """Streamed, the tool call arrives as a tool_calls delta and ends with usage."""
    tools: Any = [WEATHER_TOOL]
    stream = await client.chat.completions.create(
        model="grok-4",
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,
        stream=True,
        stream_options={"include_usage": True},
    )
    names, finishes, usage = [], [], None
    async for chunk in stream:
        for choice in chunk.choices:
            names += [c.function.name for c in choice.delta.tool_calls or [] if c.function]
            finishes.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert names == ["get_weather"] and "tool_calls" in finishes and usage is not None


async def test_json_schema_answers_match_the_schema(client: openai.AsyncOpenAI) -> None:
    """response_format json_schema (chat) and text.format (responses) answer matching JSON."""
    chat = await client.chat.completions.create(
        model="grok-4",
        messages=[{"role": "user", "content": "a joke"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Joke", "schema": JOKE, "strict": True},
        },
    )
    _matches_joke(json.loads(chat.choices[0].message.content or ""))
    response = await client.responses.create(
        model="grok-4",
        input="a joke",
        text={"format": {"type": "json_schema", "name": "Joke", "schema": JOKE, "strict": True}},
    )
    _matches_joke(json.loads(response.output_text))
    loose = await client.chat.completions.create(
        model="grok-4",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(loose.choices[0].message.content or ""), dict)


async def test_responses_function_tool(client: openai.AsyncOpenAI) -> None:
    """The Responses API answers a function tool with a function_call output item."""
    tool: Any = {"type": "function", **WEATHER_TOOL["function"]}  # type: ignore[dict-item]
    response = await client.responses.create(model="grok-4", input="weather?", tools=[tool])
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)


def test_example_follows_schema_keywords() -> None:
    """The example builder honours refs, enums, consts, nullable unions and nested arrays."""
    value = example(JOKE)
    _matches_joke(value)
    assert example({"const": 7}) == 7
    assert example({"type": ["null", "number"]}) == 1.5
    assert example({"type": "array", "items": {"type": "boolean"}, "minItems": 2}) == [True, True]
    # A self-referencing schema ends instead of recursing forever.
    tree = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    assert isinstance(example(tree), dict)


def test_simulate_command_refuses_unknown_models_by_default() -> None:
    """`simulate` serves the catalogue and --model-limits models; --any-model accepts all."""
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    strict = config_from_args(parser.parse_args(["simulate", "--model-limits", "grok-9=1:100"]))
    assert "grok-4" in strict.model_names and "grok-9" in strict.model_names
    assert "gpt-imaginary" not in strict.model_names
    loose = config_from_args(parser.parse_args(["simulate", "--any-model"]))
    assert loose.model_names == ()
