"""The gateway served on aiohttp's server or on the lean one, for the tests that compare them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from gateway_keys import CLIENT_KEY, KEY

from grok_scheduler import Scheduler
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.cli._lean_server import LeanServer
from grok_scheduler.simulator import Simulator

__all__ = ["serving_gateway"]


@contextlib.asynccontextmanager
async def serving_gateway(kind: str, sim: Simulator, scheduler: Scheduler) -> AsyncIterator[str]:
    """The gateway's base URL on aiohttp's server or on the lean one (``serve``'s default)."""
    gateway = Gateway(
        scheduler,
        upstream_url=sim.base_url,
        api_key=KEY,
        client_keys=[CLIENT_KEY],
        max_body_bytes=64 * 1024,
    )
    if kind == "lean":
        lean = LeanServer(gateway, max_body_bytes=64 * 1024)
        port = await lean.start("127.0.0.1", 0, backlog=128)
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            await lean.shutdown(5.0)
        return
    runner = web.AppRunner(gateway.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()
