"""A transport wrapper for Ctrl-C once: stop sending new calls and learn, without polling, when
the calls already on the wire have all come back."""

from __future__ import annotations

import asyncio

from ._base import Transport, TransportResponse

__all__ = ["DrainableTransport"]


class DrainableTransport:
    """A transport wrapper that can stop sending and say when the calls on the wire are back.

    After :meth:`drain`, a new ``send`` never reaches the server: it waits until the scheduler
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
        if self._draining:
            # Held until aclose cancels it: the job is never sent, so it is redone on resume.
            await asyncio.get_running_loop().create_future()
        self._sending += 1
        try:
            return await self._inner.send(path, body, timeout=timeout)
        finally:
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
        """Calls on the wire now."""
        return self._sending

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        return (
            f"DrainableTransport({self._inner!r}, sending={self._sending}, "
            f"draining={self._draining})"
        )
