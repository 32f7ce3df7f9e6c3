"""A raw local HTTP server for the transports' tests: it answers each request with scripted bytes.

aiohttp's server cannot misbehave on purpose (close mid-answer, send garbage, answer with a 103
first); this one writes whatever the test gives it, and counts connections and requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Exchange", "RawServer", "Script", "answer", "ok", "raw_server"]

# What the server does with one request: write bytes (and keep the connection open), or run a
# coroutine that may write, sleep or close as it likes.
Script = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as received, with the connection it came on."""

    head: bytes
    body: bytes
    connection: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def until_released_or_closed(self, release: asyncio.Event) -> bool:
        """Wait for ``release`` or for the client to close the connection; True if released."""
        released = asyncio.ensure_future(release.wait())
        closed = asyncio.ensure_future(self.reader.read(1))
        await asyncio.wait((released, closed), return_when=asyncio.FIRST_COMPLETED)
        for waiting in (released, closed):
            waiting.cancel()
        # The read must be over before the connection's next request is read.
        await asyncio.gather(released, closed, return_exceptions=True)
        return release.is_set()

    def header(self, name: str) -> str | None:
        prefix = name.lower().encode() + b":"
        for line in self.head.split(b"\r\n")[1:]:
            if line.lower().startswith(prefix):
                return line[len(prefix) :].strip().decode("latin-1")
        return None


@dataclass
class RawServer:
    """What the server saw: connections accepted and requests read, in order."""

    port: int = 0
    connections: int = 0
    requests: list[Exchange] = field(default_factory=list)
    open_writers: set[asyncio.StreamWriter] = field(default_factory=set)
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    def url(self, prefix: str = "/v1", host: str = "127.0.0.1") -> str:
        bracketed = f"[{host}]" if ":" in host else host
        return f"http://{bracketed}:{self.port}{prefix}"


def answer(raw: bytes, *, close: bool = False) -> Script:
    """A script that writes ``raw``, then closes the connection when ``close``."""

    async def script(exchange: Exchange) -> None:
        exchange.writer.write(raw)
        await exchange.writer.drain()
        if close:
            exchange.writer.close()

    return script


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    """A plain 200 with a Content-Length."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


@contextlib.asynccontextmanager
async def raw_server(*scripts: Script, host: str = "127.0.0.1") -> AsyncIterator[RawServer]:
    """Serve ``scripts`` to the requests in order (the last one repeats) on any connection."""
    state = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        state.handlers.add(task)
        number = state.connections
        state.open_writers.add(writer)
        try:
            while not writer.is_closing():
                request = await _read_request(reader)
                if request is None:
                    break
                exchange = Exchange(request[0], request[1], number, reader, writer)
                state.requests.append(exchange)
                await scripts[min(len(state.requests), len(scripts)) - 1](exchange)
        except ConnectionError:
            pass
        finally:
            state.open_writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for writer in list(state.open_writers):
            writer.close()
        # Each handler sees its connection end; none is left for the loop to cancel at exit.
        if state.handlers:
            await asyncio.wait(state.handlers, timeout=5.0)
        await server.wait_closed()
