"""The gateway served on aiohttp's server or on the lean one, for the tests that compare them.

As ``serve`` does, the lean kind calls upstream on the lean client (``LeanTransport``) and the
aiohttp kind on aiohttp's: the scheduler fixture asks :func:`upstream_transport` for its
transport, by the kind the test is parametrised with (:func:`gateway_kind`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from gateway_keys import CLIENT_KEY, KEY

from grok_scheduler import Scheduler
from grok_scheduler._core._scheduler import DEFAULT_CONCURRENCY_CAP
from grok_scheduler._transports._base import Transport
from grok_scheduler._transports._lean import LeanTransport
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.cli._lean_server import LeanServer
from grok_scheduler.simulator import Simulator

__all__ = ["gateway_kind", "serving_gateway", "upstream_transport"]

# The fixture parameters that put a test's gateway on the lean server.
_LEAN_PARAMS = {"gateway_url": "lean", "client": "lean-gateway"}


def gateway_kind(request: pytest.FixtureRequest) -> str:
    """``"lean"`` when the test runs the gateway on the lean server, else ``"aiohttp"``."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec is not None else {}
    lean = any(params.get(name) == value for name, value in _LEAN_PARAMS.items())
    return "lean" if lean else "aiohttp"


def upstream_transport(kind: str, sim: Simulator) -> Transport | None:
    """The scheduler's transport as ``serve`` picks it (``_upstream_client``); None: aiohttp."""
    if kind != "lean":
        return None
    return LeanTransport(
        base_url=sim.base_url, api_key=KEY, max_connections=DEFAULT_CONCURRENCY_CAP
    )


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
