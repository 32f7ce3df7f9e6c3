"""Fixtures of the adapter tests, loaded with ``pytest_plugins`` (a second conftest module would
shadow the root one): the simulator, a scheduler on it, and openai-python through the transport
and through the gateway (``client`` is parametrised over both)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
import pytest_asyncio
from gateway_keys import CLIENT_KEY, KEY
from gateway_serving import gateway_kind, serving_gateway, upstream_transport

from grok_scheduler import AsyncHTTPTransport, RetryPolicy, Scheduler
from grok_scheduler.simulator import Simulator, SimulatorConfig


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(latency=0.0, requests_per_second=None, api_key=KEY))
    async with simulator:
        yield simulator


@pytest_asyncio.fixture
async def scheduler(request: pytest.FixtureRequest, sim: Simulator) -> AsyncIterator[Scheduler]:
    """On the lean client when the test's gateway is on the lean server, as in ``serve``."""
    async with Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        retry=RetryPolicy(max_attempts=1),
        stop_on_fatal=False,
        transport=upstream_transport(gateway_kind(request), sim),
    ) as started:
        yield started


@pytest_asyncio.fixture
async def direct(sim: Simulator, scheduler: Scheduler) -> AsyncIterator[openai.AsyncOpenAI]:
    """openai-python with the scheduler as its HTTP layer."""
    http = httpx2.AsyncClient(transport=AsyncHTTPTransport(scheduler), timeout=None)
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, http_client=http, max_retries=0)
    async with client:
        yield client


@pytest_asyncio.fixture(params=["aiohttp", "lean"])
async def gateway_url(
    request: pytest.FixtureRequest, sim: Simulator, scheduler: Scheduler
) -> AsyncIterator[str]:
    """The gateway on either server: clients must see the same from both."""
    async with serving_gateway(request.param, sim, scheduler) as url:
        yield url


@pytest_asyncio.fixture
async def via_gateway(sim: Simulator, scheduler: Scheduler) -> AsyncIterator[openai.AsyncOpenAI]:
    async with serving_gateway("aiohttp", sim, scheduler) as url:
        client = openai.AsyncOpenAI(base_url=url, api_key=CLIENT_KEY, max_retries=0)
        async with client:
            yield client


@pytest_asyncio.fixture
async def via_lean_gateway(
    sim: Simulator, scheduler: Scheduler
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with serving_gateway("lean", sim, scheduler) as url:
        client = openai.AsyncOpenAI(base_url=url, api_key=CLIENT_KEY, max_retries=0)
        async with client:
            yield client


@pytest.fixture(params=["transport", "gateway", "lean-gateway"])
def client(
    request: pytest.FixtureRequest,
) -> openai.AsyncOpenAI:
    names = {"transport": "direct", "gateway": "via_gateway", "lean-gateway": "via_lean_gateway"}
    name = names[request.param]
    found: openai.AsyncOpenAI = request.getfixturevalue(name)
    return found
