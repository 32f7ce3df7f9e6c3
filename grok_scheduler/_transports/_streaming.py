"""The streaming side of a transport: open a call, then read its body as bytes arrive.

A transport that can stream has ``open_stream``: it returns once the status and headers are in,
with a :class:`StreamBody` whose chunks the caller reads at its own pace (and whose timing the
scheduler's hang watchdog judges). Like ``send``, connection trouble is raised as a typed
:class:`~grok_scheduler.APIConnectionError` (or a plain ``OSError`` / ``TimeoutError``).
:class:`MockStreamTransport` drives the tests: a handler returns the status, headers and chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ._base import TransportResponse

__all__ = [
    "MockStream",
    "MockStreamTransport",
    "StreamBody",
    "StreamHandler",
    "StreamingTransport",
]


class StreamBody(Protocol):
    """An answer whose headers are in and whose body is still arriving."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; ends when the server closes the body."""
        ...

    async def read(self) -> bytes:
        """The rest of the body at once (an error answer)."""
        ...

    async def aclose(self) -> None:
        """Close the connection: the server stops generating for a reader who left."""
        ...


@runtime_checkable
class StreamingTransport(Protocol):
    """A transport that can also stream (the aiohttp and mock-stream transports can)."""

    async def open_stream(self, path: str, body: bytes, *, timeout: float) -> StreamBody:
        """POST ``body`` and return once headers arrive (``timeout`` bounds connecting)."""
        ...


@dataclass(slots=True)
class MockStream:
    """A scripted streamed answer: ``chunks`` may be a list or an async iterable (to hang)."""

    status: int = 200
    chunks_source: Iterable[bytes] | AsyncIterable[bytes] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    closed: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        source = self.chunks_source
        if isinstance(source, AsyncIterable):
            async for chunk in source:
                yield chunk
        else:
            for chunk in source:
                yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        self.closed = True


StreamHandler = Callable[[str, dict[str, Any]], Awaitable[MockStream]]


class MockStreamTransport:
    """Calls ``handler(path, json_body)`` for each stream; ``send`` reads a stream whole."""

    __slots__ = ("_handler", "calls", "opened")

    def __init__(self, handler: StreamHandler) -> None:
        self._handler = handler
        self.calls = 0
        self.opened: list[MockStream] = []

    async def open_stream(self, path: str, body: bytes, *, timeout: float) -> MockStream:
        self.calls += 1
        stream = await self._handler(path, json.loads(body))
        self.opened.append(stream)
        return stream

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        stream = await self.open_stream(path, body, timeout=timeout)
        return TransportResponse(stream.status, await stream.read(), stream.headers)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MockStreamTransport(calls={self.calls})"
