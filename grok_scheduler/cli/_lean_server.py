"""The gateway's lean HTTP/1.1 server: an ``asyncio.Protocol`` over httptools' parser.

aiohttp's server cost about as much CPU per request as the whole scheduler (its request and
response objects, a task per connection, its writer): this one parses with httptools (the
llhttp parser that aiohttp itself vendors), answers the gateway's few routes from
:class:`Gateway`'s server-neutral methods, and writes each answer in one ``write``. It is used
by ``serve`` when httptools is installed (``pip install 'grok-scheduler[serve]'``); the aiohttp
application stays the fallback and what the library's tests build directly.

What clients see is what the aiohttp routes give them: the same statuses, bodies and headers
(plus ``Date``), 413 for a body over the cap, 404/405 for other paths and methods, HEAD on the
GET routes, keep-alive (HTTP/1.1, and HTTP/1.0 when asked), pipelined requests answered in
order, ``Expect: 100-continue``, chunked request bodies, and streams written through as
chunked SSE. A client that leaves has its call cancelled, as aiohttp's
``handler_cancellation=True`` does. :meth:`LeanServer.shutdown` stops listening, lets calls in
flight finish within the drain bound, then closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import time
from email.utils import formatdate
from typing import cast

import httptools

from .._adapters._routing import PRIORITY_HEADER, scheduled_endpoint
from .._adapters._sse_out import SSE_HEADERS, sse_bytes
from .._core._raw_stream import RawStream
from ._gateway import Answer, Gateway

__all__ = ["LeanServer"]

_GET_ROUTES = ("/v1/models", "/healthz", "/metrics")
_POST_ROUTES = ("/v1/chat/completions", "/v1/responses")
_NOT_FOUND: Answer = (404, b"404: Not Found", {"Content-Type": "text/plain; charset=utf-8"})
_BAD_REQUEST: Answer = (400, b"400: Bad Request", {"Content-Type": "text/plain; charset=utf-8"})
_SERVER_ERROR: Answer = (
    500,
    b"500 Internal Server Error\n\nServer got itself in trouble",
    {"Content-Type": "text/plain; charset=utf-8"},
)
_HEAD_TOO_LARGE: Answer = (
    431,
    b"431: Request Header Fields Too Large",
    {"Content-Type": "text/plain; charset=utf-8"},
)
# The request line and headers together (aiohttp allows 8190 bytes a line; an SDK sends ~600).
_MAX_HEAD_BYTES = 64 * 1024
_READ_HEADERS = frozenset(
    {b"authorization", b"content-length", b"expect", PRIORITY_HEADER.lower().encode()}
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STREAM_HEAD = "".join(f"{name}: {value}\r\n" for name, value in SSE_HEADERS.items())
# Idle keep-alive connections are closed after this long (aiohttp's default).
_KEEP_ALIVE = 75.0


class _Clock:
    """The ``Date`` header's value, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def date(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True)
        return self._value


_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n" for status in http.HTTPStatus
}


def _status_line(status: int) -> str:
    return _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n"


class _Request:
    """One parsed request: what the routes read."""

    __slots__ = ("body", "headers", "method", "path", "too_large", "version")

    def __init__(self, method: str, path: str, headers: dict[str, str], version: str) -> None:
        self.version = version
        self.method = method
        self.path = path
        self.headers = headers
        self.body: list[bytes] = []
        self.too_large = False


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them one at a time, in order."""

    def __init__(self, server: LeanServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._request: _Request | None = None
        self._size = 0
        self._head_size = 0
        self._in_head = False
        self._queue: list[tuple[_Request, bool]] = []
        self._task: asyncio.Task[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._closed = False
        self.idle_since = time.monotonic()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client left: its call is not wanted any more
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError):
            self._fail(_BAD_REQUEST)
            return
        if self._in_head:
            # The parser keeps a request line and headers whole until they end: bound them,
            # as aiohttp bounds its lines, or a client that never ends them grows memory.
            self._head_size += len(data)
            if self._head_size > _MAX_HEAD_BYTES:
                self._fail(_HEAD_TOO_LARGE)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._size = 0
        self._head_size = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        # Only the few headers the routes read are kept (an SDK sends a dozen more). Repeated
        # ones: the first wins, as aiohttp's headers.get() gives it.
        if key in _READ_HEADERS:
            self._headers.setdefault(key.decode("latin-1"), value.decode("utf-8", "replace"))

    def on_headers_complete(self) -> None:
        self._in_head = False
        method = self._parser.get_method().decode("ascii", "replace")
        path = httptools.parse_url(self._url).path.decode("latin-1")
        request = _Request(method, path, self._headers, self._parser.get_http_version())
        self._request = request
        length = self._headers.get("content-length", "")
        if length.isdigit() and int(length) > self._server.max_body:
            request.too_large = True
        elif self._headers.get("expect", "").lower() == "100-continue":
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None or request.too_large:
            return  # read and dropped: the 413 is written once the request is complete
        self._size += len(body)
        if self._size > self._server.max_body:
            request.too_large = True
            request.body.clear()
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request = self._request
        self._request = None
        if request is None:
            return
        self._queue.append((request, bool(self._parser.should_keep_alive())))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve_queue())
            self._server.tasks.add(self._task)
            self._task.add_done_callback(self._server.tasks.discard)
        elif len(self._queue) > 1:
            assert self._transport is not None
            self._transport.pause_reading()  # a client pipelining far ahead waits its turn

    # -- answering --------------------------------------------------------------------------
    async def _serve_queue(self) -> None:
        try:
            while self._queue and not self._closed:
                request, keep_alive = self._queue.pop(0)
                if request.too_large:
                    keep_alive = False  # as aiohttp: the rest of such a client's stream is not read
                try:
                    keep_alive = await self._answer(request, keep_alive) and keep_alive
                except Exception:
                    # A bug must not leave the client waiting: 500, as aiohttp answers one.
                    self._write(_SERVER_ERROR, keep_alive=False)
                    keep_alive = False
                if not keep_alive:
                    self._close()
                    return
                if self._transport is not None and not self._closed:
                    self._transport.resume_reading()
        finally:
            self._task = None
            self.idle_since = time.monotonic()

    async def _answer(self, request: _Request, keep_alive: bool) -> bool:
        """Answer one request; False when the connection cannot be reused."""
        gateway, head_only = self._server.gateway, False
        method, path = request.method, request.path
        if method == "HEAD" and path in _GET_ROUTES:
            method, head_only = "GET", True
        if path in _POST_ROUTES and method == "POST":
            authorization = request.headers.get("authorization")
            refused = gateway.refusal(authorization)
            if refused is not None:
                answer: Answer | RawStream = refused
            elif request.too_large:
                answer = gateway.too_large()
            else:
                endpoint = scheduled_endpoint(method, path)
                assert endpoint is not None
                body = b"".join(request.body)
                answer = await gateway.model_call(
                    endpoint, body, request.headers.get(PRIORITY_HEADER)
                )
        elif path in _GET_ROUTES and method == "GET" and self._served(path):
            if path == "/v1/models":
                answer = await gateway.models(request.headers.get("authorization"))
            elif path == "/healthz":
                answer = gateway.health()
            else:
                answer = gateway.metrics()
        elif path in _POST_ROUTES or (path in _GET_ROUTES and self._served(path)):
            allow = "POST" if path in _POST_ROUTES else "GET,HEAD"
            text = b"405: Method Not Allowed"
            answer = (405, text, {"Content-Type": "text/plain; charset=utf-8", "Allow": allow})
        else:
            answer = _NOT_FOUND
        if isinstance(answer, RawStream):
            return await self._write_stream(answer, keep_alive, chunked=request.version != "1.0")
        self._write(answer, keep_alive, head_only)
        return True

    def _served(self, path: str) -> bool:
        return path != "/metrics" or self._server.metrics

    def _head(self, status: int, headers: dict[str, str], keep_alive: bool) -> list[str]:
        lines = [_status_line(status)]
        for name, value in headers.items():
            # Nothing may break the framing (aiohttp's writer refuses such headers too).
            if "\n" not in name and "\r" not in name and "\n" not in value and "\r" not in value:
                lines.append(f"{name}: {value}\r\n")
        if "Date" not in headers and "date" not in headers:
            lines.append(f"Date: {self._server.clock.date()}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        return lines

    def _write(self, answer: Answer, keep_alive: bool, head_only: bool = False) -> None:
        status, body, headers = answer
        if self._closed or self._transport is None:
            return
        lines = self._head(status, headers, keep_alive)
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        # UTF-8, as aiohttp writes headers (a server's header may hold any text).
        head = "".join(lines).encode("utf-8", "surrogateescape")
        self._transport.write(head if head_only else head + body)

    async def _write_stream(self, raw: RawStream, keep_alive: bool, *, chunked: bool) -> bool:
        """Write a started stream through as SSE; the call is closed in any case.

        Chunked for HTTP/1.1; an HTTP/1.0 client reads until the connection closes.
        """
        keep_alive = keep_alive and chunked
        try:
            lines = self._head(200, {}, keep_alive)
            lines.append(_STREAM_HEAD)
            lines.append("Transfer-Encoding: chunked\r\n\r\n" if chunked else "\r\n")
            if not self._send("".join(lines).encode("utf-8", "surrogateescape")):
                return False
            async for chunk in sse_bytes(raw):
                framed = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
                if chunk and not self._send(framed):
                    return False  # the client left: nobody reads the rest
                await self._drained()
            return (self._send(b"0\r\n\r\n") if chunked else False) and keep_alive
        except asyncio.CancelledError:
            raw.cancel()
            raise
        finally:
            await raw.aclose()

    def _send(self, data: bytes) -> bool:
        if self._closed or self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    async def _drained(self) -> None:
        if self._writable is not None and not self._closed:
            await self._writable

    def _wake_writer(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _fail(self, answer: Answer) -> None:
        """A request refused as it is read (400, 431): answered, then the connection closed."""
        self._in_head = False
        self._write(answer, keep_alive=False)
        self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def close_if_idle(self, older_than: float) -> None:
        """Close the connection when no request is being answered (and it idled long enough)."""
        if self._task is None and not self._queue and self.idle_since <= older_than:
            self._close()


class LeanServer:
    """The gateway's routes on the lean protocol; :meth:`start`, then :meth:`shutdown`."""

    def __init__(self, gateway: Gateway, *, max_body_bytes: int, metrics: bool = True) -> None:
        self.gateway = gateway
        self.max_body = max_body_bytes
        self.metrics = metrics
        self.clock = _Clock()
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"LeanServer(connections={len(self.connections)}, answering={len(self.tasks)})"

    async def start(self, host: str, port: int, *, backlog: int) -> int:
        """Listen on ``host:port``; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=backlog
        )
        self._sweeper = loop.create_task(self._sweep_idle())
        port_bound: int = self._server.sockets[0].getsockname()[1]
        return port_bound

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(_KEEP_ALIVE / 3)
            cutoff = time.monotonic() - _KEEP_ALIVE
            for connection in list(self.connections):
                connection.close_if_idle(cutoff)

    async def shutdown(self, timeout: float) -> None:
        """Stop listening, let answers in progress finish (up to ``timeout`` s), close all."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close_if_idle(float("inf"))
        if self.tasks:
            _done, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for connection in list(self.connections):
            connection.close_if_idle(float("inf"))
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        await self.gateway.aclose()
