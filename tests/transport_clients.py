"""Clients of the transports' tests: either transport on a base URL, a raw server with one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import traceback
from collections.abc import AsyncIterator, Callable

import pytest
from raw_http import Exchange, RawServer, Script, raw_server

from grok_scheduler import AiohttpTransport
from grok_scheduler._errors import APIError
from grok_scheduler._transports._lean import LeanTransport

__all__ = ["CHAT", "KEY", "KINDS", "Transport", "client", "fails", "hold", "served", "until"]

KEY = "xai-LEANcanary0123456789abcdefXYZ"
KINDS = ["aiohttp", "lean"]
CHAT = json.dumps(
    {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
).encode()

Transport = AiohttpTransport | LeanTransport


@contextlib.asynccontextmanager
async def client(kind: str, base_url: str, *, connections: int = 4) -> AsyncIterator[Transport]:
    cls = LeanTransport if kind == "lean" else AiohttpTransport
    transport = cls(base_url=base_url, api_key=KEY, max_connections=connections)
    try:
        yield transport
    finally:
        await transport.aclose()


async def fails(transport: Transport, timeout: float = 5.0) -> APIError:
    """The typed error a call raises; the key must be nowhere in it or its chain."""
    with pytest.raises(APIError) as raised:
        await transport.send("chat/completions", CHAT, timeout=timeout)
    error = raised.value
    assert KEY not in "".join(traceback.format_exception(error)) + repr(error)
    return error


async def until(condition: Callable[[], bool]) -> None:
    """Wait (boundedly) for something the event loop will make true, e.g. a socket closing."""
    async with asyncio.timeout(5.0):
        # What is awaited is the kernel and the loop (a FIN seen), which no Event announces.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def served(
    kind: str, *scripts: Script, host: str = "127.0.0.1", prefix: str = "/v1"
) -> AsyncIterator[tuple[RawServer, Transport]]:
    """A raw server playing ``scripts`` and a client of ``kind`` on it."""
    async with (
        raw_server(*scripts, host=host) as server,
        client(kind, server.url(prefix, host)) as transport,
    ):
        yield server, transport


def hold(release: asyncio.Event, then: bytes = b"") -> Script:
    """A script that answers nothing until ``release`` is set, then writes ``then``."""

    async def script(exchange: Exchange) -> None:
        if await exchange.until_released_or_closed(release):
            exchange.writer.write(then)

    return script
