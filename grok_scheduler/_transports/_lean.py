"""LeanTransport: whole-body POSTs over a small HTTP/1.1 client on httptools' parser.

Why: in ``serve``, aiohttp's client was about a third of the gateway's CPU per request (its
request and response objects, its connector, its timers). A model call needs little of it: one
POST of bytes to one host, the status, headers and whole body back, keep-alive. This client
parses answers with httptools (the llhttp parser aiohttp itself vendors) on an
``asyncio.Protocol`` and keeps a pool of idle connections. Streams go through the aiohttp
transport it wraps, and so do URLs it does not handle (neither http nor https).

It behaves as :class:`AiohttpTransport` does: the same headers sent (the key only in
``Authorization``), no redirects followed, no proxy from the environment (aiohttp's sessions
here do not trust it either), answers of any status returned whole, ``gzip``/``deflate`` bodies
decoded, and failures raised as :class:`APIConnectionError` / :class:`APITimeoutError` with the
same retry verdicts. Header names come back lower-cased (a plain dict, looked up in lower case).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools

from .._errors import APIError
from .._wire._classify import connection_error, timeout_error
from ._aiohttp import AiohttpTransport
from ._aiohttp_stream import AiohttpStream
from ._base import TransportResponse

__all__ = ["LeanTransport"]

# Idle connections older than this are closed, not reused (aiohttp's keepalive_timeout): a
# server that closed its end meanwhile would fail the next call sent on it.
_IDLE_SECONDS = 15.0
# zlib's window bits for each encoding, given the body's first byte. Many servers send "deflate"
# as a bare deflate stream, without the zlib header RFC 9110 asks for; aiohttp decodes those
# (a zlib header's low nibble is always 8), and so must this client.
_WINDOW_BITS: dict[str, Callable[[int], int]] = {
    "gzip": lambda _: 16 + zlib.MAX_WBITS,
    "x-gzip": lambda _: 16 + zlib.MAX_WBITS,
    "deflate": lambda first: zlib.MAX_WBITS if first & 0x0F == 8 else -zlib.MAX_WBITS,
}


class ServerDisconnectedError(ConnectionError):
    """The server closed the connection before its answer was whole."""


class UnsupportedEncodingError(ValueError):
    """The answer's body is in a content encoding this client cannot decode."""


# What a call can fail with; anything else (a programming error) propagates as it is.
_FAILURES = (OSError, TimeoutError, httptools.HttpParserError, UnsupportedEncodingError, zlib.error)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one call on it at a time."""

    __slots__ = (
        "_body",
        "_delimited",
        "_headers",
        "_parser",
        "_transport",
        "_waiter",
        "closed",
        "idle_since",
    )

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes, bool]] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._delimited = True
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is no longer in step
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # A 101 (an upgrade no POST asks for) is returned as aiohttp returns it; the
            # connection speaks another protocol from here. Raised out of here, the loop would
            # log a fatal error and the call would fail untyped.
            self._complete(keep_alive=False)
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._delimited and self._parser.get_status_code():
            # An answer with neither Content-Length nor chunks ends where the connection does.
            self._complete(keep_alive=False)
            return
        waiter.set_exception(exc or ServerDisconnectedError("the server closed the connection"))

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._waiter is not None and self._waiter.done():
            # More after the whole answer (a stray or pipelined one): the bytes still to come
            # on this connection would be read as the next call's answer. Not reused.
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        # A doubled header reads as its first value, as aiohttp's headers answer get() and as
        # the scheduler's header parsing takes them: joined, "2, 5" is no Retry-After at all.
        self._headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        # Whether the answer says where it ends. A Transfer-Encoding other than chunked (e.g.
        # identity) overrides any length: the body then ends where the connection does.
        coding = self._headers.get("transfer-encoding")
        if coding is None:
            self._delimited = "content-length" in self._headers
        else:
            self._delimited = coding.lower().rstrip().endswith("chunked")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            # 1xx: the real answer follows; a close before it is a disconnect, not an answer.
            self._headers, self._body, self._delimited = {}, [], True
            return
        self._delimited = True
        self._complete(keep_alive=self._parser.should_keep_alive())

    # -- the call ----------------------------------------------------------------------------
    def _complete(self, *, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result((status, self._headers, b"".join(self._body), keep_alive))

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    async def call(self, request: bytes, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """Write ``request``; the answer's status, headers, body and whether to keep it.

        Past ``timeout`` seconds the call fails with :class:`TimeoutError` (a timer on the
        answer's future: cheaper per call than ``asyncio.timeout``'s cancel and uncancel).
        """
        assert self._transport is not None
        self._headers, self._body, self._delimited = {}, [], True
        self._parser = httptools.HttpResponseParser(self)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, dict[str, str], bytes, bool]] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, self._expire, timeout)
        self._transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _expire(self, timeout: float) -> None:
        self._fail(TimeoutError(f"no whole answer within {timeout:g}s"))

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


class LeanTransport:
    """Plain POSTs on the lean client; streams on the aiohttp transport it wraps."""

    __slots__ = (
        "_aiohttp",
        "_authority",
        "_busy",
        "_handled",
        "_head",
        "_host",
        "_idle",
        "_max_idle",
        "_path",
        "_port",
        "_ssl",
        "_tls",
    )

    def __init__(self, *, base_url: str, api_key: str, max_connections: int) -> None:
        self._aiohttp = AiohttpTransport(
            base_url=base_url, api_key=api_key, max_connections=max_connections
        )
        parts = urlsplit(base_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        try:
            self._port = parts.port or (443 if self._tls else 80)
        except ValueError:  # a port out of range: aiohttp says what is wrong with the URL
            self._port = 0
        # A URL this client does not handle is left to aiohttp (which refuses it, typed).
        self._handled = parts.scheme in ("http", "https") and bool(self._host) and self._port > 0
        self._path = parts.path.rstrip("/") + "/"
        bracketed = f"[{self._host}]" if ":" in self._host else self._host
        default_port = self._port == (443 if self._tls else 80)
        self._authority = bracketed if default_port else f"{bracketed}:{self._port}"
        # The headers every call sends, as aiohttp's session sent them; the key only here.
        # In UTF-8 as aiohttp writes headers: a key pasted with a character beyond latin-1
        # reaches the server (which refuses it) rather than stopping ``serve`` at its start.
        self._head = (
            f"Host: {self._authority}\r\nAuthorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\nUser-Agent: grok-scheduler/0.1\r\n"
            "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        ).encode()
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[_Connection] = []
        # Connections with a call on them: aclose() closes these too, as aiohttp's does.
        self._busy: set[_Connection] = set()
        self._max_idle = max_connections

    def __repr__(self) -> str:
        return f"LeanTransport(base_url={self._path!r} on {self._authority!r})"

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        """POST ``body``; failures are raised as typed :class:`APIError` subclasses."""
        if not self._handled:
            return await self._aiohttp.send(path, body, timeout=timeout)
        request = b"".join(
            (
                f"POST {self._path}{path} HTTP/1.1\r\n".encode("latin-1"),
                self._head,
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        try:
            status, headers, payload = await self._call(request, timeout)
        except _FAILURES as exc:
            raise _map(exc) from exc
        return TransportResponse(status=status, body=payload, headers=headers)

    async def _call(self, request: bytes, timeout: float) -> tuple[int, dict[str, str], bytes]:
        connection = self._idle_connection()
        if connection is None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            async with asyncio.timeout_at(deadline):
                connection = await self._connect()
            timeout = deadline - loop.time()
        self._busy.add(connection)
        try:
            status, headers, body, keep = await connection.call(request, timeout)
        except BaseException:
            connection.close()  # cut mid-answer (a timeout, a cancel, a failure): not reusable
            raise
        finally:
            self._busy.discard(connection)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            window_bits = _WINDOW_BITS.get(encoding)
            try:
                if window_bits is None:
                    raise UnsupportedEncodingError(f"unsupported content-encoding {encoding!r}")
                body = zlib.decompressobj(window_bits(body[0])).decompress(body) if body else body
            except (zlib.error, UnsupportedEncodingError):
                # In no pool by now: left open, nothing (not even aclose) would ever close it.
                connection.close()
                raise
            del headers["content-encoding"]
        if keep and not connection.closed and len(self._idle) < self._max_idle:
            now = connection.idle_since = time.monotonic()
            self._idle.append(connection)
            # Calls take the newest; the ones a burst left below it would otherwise stay open
            # past the bound for as long as the server lets them.
            while now - self._idle[0].idle_since >= _IDLE_SECONDS:
                self._idle.pop(0).close()
        else:
            connection.close()
        return status, headers, body

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection still open and fresh, if any."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < _IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        _, protocol = await loop.create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl if self._tls else None,
            server_hostname=self._host if self._tls else None,
        )
        return protocol

    async def open_stream(self, path: str, body: bytes, *, timeout: float) -> AiohttpStream:
        """Streams are read as they come: aiohttp's stream reader does that already."""
        return await self._aiohttp.open_stream(path, body, timeout=timeout)

    async def aclose(self) -> None:
        # A call still in flight fails (retryable); left open, its connection would go back to
        # the pool of a closed transport when its answer came, and stay open for good.
        for connection in (*self._idle, *self._busy):
            connection.close()
        self._idle.clear()
        self._busy.clear()
        await self._aiohttp.aclose()


def _map(exc: BaseException) -> APIError:
    """The typed error and retry verdict, as :func:`~._aiohttp.map_exception` gives them."""
    if isinstance(exc, ssl.SSLCertVerificationError | UnsupportedEncodingError):
        return connection_error(exc, retryable=False)
    if isinstance(exc, TimeoutError):
        return timeout_error(exc)
    return connection_error(exc, retryable=True)
