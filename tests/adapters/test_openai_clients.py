"""The real openai-python client through AsyncHTTPTransport and through the gateway.

The simulator stands behind both; the SDK's own exceptions come out as they would without the
scheduler (a bad upstream key is xAI's 400, so BadRequestError; a wrong gateway key is 401).
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from gateway_keys import CLIENT_KEY, KEY

from grok_scheduler import AsyncHTTPTransport, Priority, Scheduler
from grok_scheduler.simulator import Simulator

# The simulator, scheduler, gateway and client fixtures.
pytest_plugins = ["gateway_support"]

MESSAGES = [{"role": "user", "content": "hello there"}]


async def test_chat_completion(client: openai.AsyncOpenAI, sim: Simulator) -> None:
    """A chat call is answered through the scheduler, and reaches the server once."""
    answer = await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert sim.stats.requests == 1


async def test_responses(client: openai.AsyncOpenAI) -> None:
    """The Responses API works the same way."""
    answer = await client.responses.create(model="grok-4.3", input="hello")
    assert answer.output_text


async def test_priority_block_and_header(client: openai.AsyncOpenAI, scheduler: Scheduler) -> None:
    """Priority by context manager and by header both work; the header is accepted by name."""
    with scheduler.priority(Priority.HIGH):
        await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]
    answer = await client.chat.completions.create(
        model="grok-4.3",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={"x-grok-scheduler-priority": "critical"},
    )
    assert answer.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="grok-4.3",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-grok-scheduler-priority": "soonish"},
        )
    assert "x-grok-scheduler-priority" in str(caught.value.body)


async def test_a_429_comes_out_as_rate_limit_error(
    client: openai.AsyncOpenAI, sim: Simulator
) -> None:
    """With the scheduler's retries spent, the server's 429 reaches the SDK as RateLimitError."""
    sim.fail_next("capacity_429")
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]


async def test_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    """A 4xx of the server keeps its status: the SDK raises the class it always did."""
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="", messages=MESSAGES)  # type: ignore[arg-type]
    assert 400 <= caught.value.status_code < 500


async def test_models_pass_through(client: openai.AsyncOpenAI) -> None:
    """models.list is not scheduled but reaches the server."""
    models = await client.models.list()
    assert models.data


async def test_bad_upstream_key_is_xais_400(sim: Simulator) -> None:
    """A wrong upstream key: xAI's 400 'Incorrect API key' reaches the SDK, key redacted."""
    async with Scheduler(
        api_key="xai-WRONGkeyWRONGkey0123456789", base_url=sim.base_url
    ) as scheduler:
        http = httpx2.AsyncClient(transport=AsyncHTTPTransport(scheduler))
        client = openai.AsyncOpenAI(
            base_url=sim.base_url, api_key="x", http_client=http, max_retries=0
        )
        async with client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]
            assert "Incorrect API key" in str(caught.value.body)
            assert "WRONGkey" not in str(caught.value.body)
            # The run stopped on the fatal answer: later calls still get the SDK's class.
            with pytest.raises(openai.BadRequestError):
                await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]


async def test_wrong_client_key_is_401(gateway_url: str, sim: Simulator) -> None:
    """The gateway refuses a key that is not one of its client keys; nothing goes upstream."""
    client = openai.AsyncOpenAI(base_url=gateway_url, api_key="nope", max_retries=0)
    async with client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="grok-4.3", messages=MESSAGES)  # type: ignore[arg-type]
    assert sim.stats.requests == 0


async def test_gateway_caps_bodies_and_reports_health(gateway_url: str) -> None:
    """A body over the cap gets a clear 413; /healthz answers 200 while serving."""
    root = gateway_url.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with httpx2.AsyncClient() as http:
        big = {"model": "grok-4.3", "messages": [{"role": "user", "content": "x" * 100_000}]}
        response = await http.post(f"{gateway_url}/chat/completions", json=big, headers=headers)
        assert response.status_code == 413
        assert "larger than" in response.json()["error"]
        health = await http.get(f"{root}/healthz")
        assert health.status_code == 200
    assert KEY not in response.text


async def test_a_call_naming_no_model_goes_as_the_gateways_model(
    gateway_url: str, sim: Simulator, scheduler: Scheduler
) -> None:
    """``serve --model`` is the model of calls that name none, upstream as in the limits."""
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with httpx2.AsyncClient() as http:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        response = await http.post(f"{gateway_url}/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == scheduler.model
    assert sim.stats.accepted == 1


async def test_the_gateway_sends_the_clients_own_bytes_unless_it_names_the_model(
    gateway_url: str, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body naming its model goes upstream as the client wrote it; one naming none is
    encoded anew with the gateway's model in it."""
    given: list[bytes | None] = []
    send_raw = scheduler.send_raw

    async def recording(*args: Any, encoded: bytes | None = None, **kwargs: Any) -> Any:
        given.append(encoded)
        return await send_raw(*args, encoded=encoded, **kwargs)

    monkeypatch.setattr(scheduler, "send_raw", recording)
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    named = b'{ "model": "grok-4",  "messages": [{"role": "user", "content": "h\\u00e9"}] }'
    unnamed = b'{"messages": [{"role": "user", "content": "hi"}]}'
    async with httpx2.AsyncClient() as http:
        for content in (named, unnamed):
            url = f"{gateway_url}/chat/completions"
            response = await http.post(url, content=content, headers=headers)
            assert response.status_code == 200, response.text
    assert given == [named, None]


def test_serve_refuses_a_public_address_without_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding beyond loopback needs --allow-remote: a usage error (2) otherwise."""
    from grok_scheduler.cli import main

    monkeypatch.setenv("XAI_API_KEY", KEY)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
