"""MockTransport: a handler function in place of the network, for tests and demos."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from .._clock import Clock
from ._base import TransportResponse

__all__ = ["Handler", "MockTransport"]

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
