"""A transport wrapper for Ctrl-C once: stop sending new calls and learn, without polling, when
the calls already on the wire have all come back.

A call is on the wire from the moment it is sent until its answer is in: for ``send`` until it
returns, for a stream (``open_stream``) until its body was read to the end or closed. The
wrapper streams only when the transport it wraps can (:func:`drainable` picks the class): the
scheduler asks ``isinstance(transport, StreamingTransport)`` to decide whether ``submit`` may
stream on the wire, so a wrapper over a plain transport must not claim to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

from ._base import Transport, TransportResponse
from ._streaming import StreamBody, StreamingTransport

__all__ = ["DrainableStreamingTransport", "DrainableTransport", "drainable"]


class DrainableTransport:
    """A transport wrapper that can stop sending and say when the calls on the wire are back.

    After :meth:`drain`, a new call never reaches the server: it waits until the scheduler
    is closed (which cancels it). :meth:`wait_idle` returns once no call is on the wire.
    """

    __slots__ = ("_draining", "_idle", "_inner", "_sending")

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self._sending = 0
        self._draining = False
        self._idle: asyncio.Event | None = None

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        """Send through the wrapped transport, unless draining."""
        await self._hold_if_draining()
        self._sending += 1
        try:
            return await self._inner.send(path, body, timeout=timeout)
        finally:
            self._call_ended()

    async def _hold_if_draining(self) -> None:
        if self._draining:
            # Held until aclose cancels it: the job is never sent, so it is redone on resume.
            await asyncio.get_running_loop().create_future()

    def _call_ended(self) -> None:
        self._sending -= 1
        if self._draining and self._sending == 0 and self._idle is not None:
            self._idle.set()

    def drain(self) -> None:
        """Send nothing new from now on."""
        self._draining = True

    async def wait_idle(self) -> None:
        """Return once :meth:`drain` was called and no call is on the wire."""
        self.drain()
        if self._sending == 0:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        await self._idle.wait()

    @property
    def sending(self) -> int:
        """Calls on the wire now (streams included)."""
        return self._sending

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._inner!r}, sending={self._sending}, "
            f"draining={self._draining})"
        )


class _StreamingInner(Transport, StreamingTransport, Protocol):
    """A transport that sends and streams (what :class:`DrainableStreamingTransport` wraps)."""


class DrainableStreamingTransport(DrainableTransport):
    """:class:`DrainableTransport` over a transport that streams: streams are drained too."""

    __slots__ = ("_streaming",)

    def __init__(self, inner: _StreamingInner) -> None:
        super().__init__(inner)
        self._streaming = inner

    async def open_stream(self, path: str, body: bytes, *, timeout: float) -> StreamBody:
        """Open a stream through the wrapped transport, unless draining (then held like send)."""
        await self._hold_if_draining()
        self._sending += 1
        try:
            stream = await self._streaming.open_stream(path, body, timeout=timeout)
        except BaseException:
            self._call_ended()
            raise
        return _CountedStream(stream, self._call_ended)


class _CountedStream:
    """A stream body that tells its wrapper once when it is off the wire (read out or closed)."""

    __slots__ = ("_ended", "_inner", "_on_end")

    def __init__(self, inner: StreamBody, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end
        self._ended = False

    @property
    def status(self) -> int:
        return self._inner.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._inner.headers

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            # One loop step late, on purpose: the scheduler reads a stream in a task of its own
            # whose end reaches the job's worker one step later. Told now, a drain waiting for
            # the wire to go idle would cancel the job before its answer was recorded.
            asyncio.get_running_loop().call_soon(self._on_end)

    async def chunks(self) -> AsyncIterator[bytes]:
        # A reader cancelled mid-body has not ended the call: its aclose (which always follows
        # in the scheduler) does. A broken connection has.
        try:
            async for data in self._inner.chunks():
                yield data
        except Exception:
            self._end()
            raise
        self._end()

    async def read(self) -> bytes:
        try:
            data = await self._inner.read()
        except Exception:
            self._end()
            raise
        self._end()
        return data

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._end()

    def __repr__(self) -> str:
        return f"_CountedStream({self._inner!r}, ended={self._ended})"


def drainable(inner: Transport) -> DrainableTransport:
    """A drainable wrapper of ``inner`` that streams exactly when ``inner`` can."""
    if isinstance(inner, StreamingTransport):
        return DrainableStreamingTransport(inner)
    return DrainableTransport(inner)
