"""``GET /v1/models`` through the gateway: one pooled upstream session, closed with the app."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from gateway_keys import CLIENT_KEY, KEY

from grok_scheduler import Scheduler
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.simulator import Simulator, SimulatorConfig


async def test_models_calls_share_one_session_closed_at_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions: list[aiohttp.ClientSession] = []
    real = aiohttp.ClientSession

    def counted(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = real(*args, **kwargs)
        sessions.append(session)
        return session

    config = SimulatorConfig(latency=0.0, requests_per_second=None, api_key=KEY)
    async with Simulator(config) as sim, Scheduler(api_key=KEY, base_url=sim.base_url) as sched:
        gateway = Gateway(sched, upstream_url=sim.base_url, api_key=KEY, client_keys=[CLIENT_KEY])
        runner = web.AppRunner(gateway.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        try:
            # Patched only now: the calls below make no model call, so the gateway's pass
            # through is the only aiohttp session that can be opened.
            monkeypatch.setattr(aiohttp, "ClientSession", counted)
            async with openai.AsyncOpenAI(base_url=base_url, api_key=CLIENT_KEY) as client:
                for _ in range(3):
                    models = await client.models.list()
                    assert models.data
        finally:
            monkeypatch.undo()
            await runner.cleanup()
    assert len(sessions) == 1
    assert sessions[0].closed
