"""Fixtures of the adapter tests, loaded with ``pytest_plugins`` (a second conftest module would
shadow the root one): the simulator, a scheduler on it, and openai-python through the transport
and through the gateway (``client`` is parametrised over both)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
import pytest_asyncio
from aiohttp import web
from gateway_keys import CLIENT_KEY, KEY

from grok_scheduler import AsyncHTTPTransport, RetryPolicy, Scheduler
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.simulator import Simulator, SimulatorConfig


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
    runner = web.AppRunner(gateway.app(), access_log=None, handler_cancellation=True)
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
