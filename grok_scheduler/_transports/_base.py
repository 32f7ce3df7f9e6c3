"""Sending one request: the transport interface, the aiohttp transport and a mock for tests.

A transport does one thing, ``send``; it returns whatever status the server gave and raises only
for connection-level trouble. Mapping statuses and exceptions to typed errors happens in one
place, :mod:`grok_scheduler._classify`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from .._clock import Clock

__all__ = ["AiohttpTransport", "MockTransport", "Transport", "TransportResponse"]

_LARGE_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TransportResponse:
    """A raw HTTP answer."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str | None:
        """The server's request id header, when it sent one."""
        for name in ("x-request-id", "request-id", "x-xai-request-id"):
            value = self.headers.get(name)
            if value:
                return value
        return None


class Transport(Protocol):
    """Sends a JSON body to an endpoint path (relative to the base URL)."""

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        """POST ``body``; raise :class:`TimeoutError` after ``timeout`` seconds."""
        ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """HTTP over aiohttp with a pooled connector sized to the scheduler's concurrency."""

    __slots__ = ("_authorization", "_base_url", "_max_connections", "_session")

    def __init__(self, *, base_url: str, api_key: str, max_connections: int) -> None:
        self._base_url = base_url.rstrip("/") + "/"
        # Kept only as the ready-made header value, never exposed by repr or attributes' names.
        self._authorization = f"Bearer {api_key}"
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=self._max_connections, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/json",
                "User-Agent": "grok-scheduler/0.1",
            },
            # Responses are read whole; aiohttp's own reads must not stop at a default.
            read_bufsize=2**16,
        )
        return self._session

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        session = self._session or self._open()
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        # aiohttp warns about raw bytes over 1 MiB; a file-like payload says the same thing quietly.
        data: bytes | io.BytesIO = body if len(body) < _LARGE_BODY else io.BytesIO(body)
        async with session.post(
            # No redirects: a redirect would carry the Authorization header to another URL.
            self._base_url + path,
            data=data,
            timeout=client_timeout,
            allow_redirects=False,
        ) as response:
            payload = await response.read()
            return TransportResponse(status=response.status, body=payload, headers=response.headers)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"AiohttpTransport(base_url={self._base_url!r})"


Handler = Callable[[str, dict[str, Any]], Awaitable[TransportResponse]]


class MockTransport:
    """Calls ``handler(path, json_body)`` instead of the network; timeouts run on ``clock``."""

    __slots__ = ("_clock", "_handler", "calls")

    def __init__(self, handler: Handler, *, clock: Clock | None = None) -> None:
        self._handler = handler
        self._clock = clock
        self.calls = 0

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        self.calls += 1
        call = self._handler(path, json.loads(body))
        if self._clock is None:
            return await call
        task = asyncio.ensure_future(call)
        timer = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
        if task in done:
            return task.result()
        raise TimeoutError(f"mock call exceeded {timeout:g}s")

    async def aclose(self) -> None:
        return None
