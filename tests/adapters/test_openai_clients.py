"""The real openai-python client through AsyncHTTPTransport and through the gateway.

The simulator stands behind both; the SDK's own exceptions come out as they would without the
scheduler (a bad upstream key is xAI's 400, so BadRequestError; a wrong gateway key is 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
import pytest_asyncio
from aiohttp import web

from grok_scheduler import AsyncHTTPTransport, Priority, RetryPolicy, Scheduler
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-GATEWAYtestKEY0123456789abcdef"
CLIENT_KEY = "gw-client-key-0123456789"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(latency=0.0, requests_per_second=None, api_key=KEY))
    async with simulator:
        yield simulator


@pytest_asyncio.fixture
async def scheduler(sim: Simulator) -> AsyncIterator[Scheduler]:
    async with Scheduler(
        api_key=KEY, base_url=sim.base_url, retry=RetryPolicy(max_attempts=1), stop_on_fatal=False
    ) as started:
        yield started


@pytest_asyncio.fixture
async def direct(sim: Simulator, scheduler: Scheduler) -> AsyncIterator[openai.AsyncOpenAI]:
    """openai-python with the scheduler as its HTTP layer."""
    http = httpx2.AsyncClient(transport=AsyncHTTPTransport(scheduler), timeout=None)
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, http_client=http, max_retries=0)
    async with client:
        yield client


@pytest_asyncio.fixture
async def gateway_url(sim: Simulator, scheduler: Scheduler) -> AsyncIterator[str]:
    gateway = Gateway(
        scheduler,
        upstream_url=sim.base_url,
        api_key=KEY,
        client_keys=[CLIENT_KEY],
        max_body_bytes=64 * 1024,
    )
    runner = web.AppRunner(gateway.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def via_gateway(gateway_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=gateway_url, api_key=CLIENT_KEY, max_retries=0)
    async with client:
        yield client


@pytest.fixture(params=["transport", "gateway"])
def client(
    request: pytest.FixtureRequest,
) -> openai.AsyncOpenAI:
    name = "direct" if request.param == "transport" else "via_gateway"
    found: openai.AsyncOpenAI = request.getfixturevalue(name)
    return found


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


async def test_streaming_is_refused_clearly(client: openai.AsyncOpenAI, sim: Simulator) -> None:
    """Streaming is answered 501 (not yet scheduled) and never sent upstream unlimited."""
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="grok-4.3", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert caught.value.status_code == 501
    assert sim.stats.requests == 0


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


def test_serve_refuses_a_public_address_without_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding beyond loopback needs --allow-remote: a usage error (2) otherwise."""
    from grok_scheduler.cli import main

    monkeypatch.setenv("XAI_API_KEY", KEY)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
