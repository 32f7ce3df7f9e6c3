"""Streaming over aiohttp: open a POST, hand its body out chunk by chunk, map aiohttp's errors.

The hang watchdog lives in the scheduler (it knows each model's pace); aiohttp's own timeouts
only bound connecting, so a long answer is never cut by a total timeout here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

from .._errors import APIError

__all__ = ["AiohttpStream", "open_aiohttp_stream"]

_MAPPED: tuple[type[Exception], ...] = (aiohttp.ClientError, OSError, TimeoutError)


class AiohttpStream:
    """One streamed aiohttp answer; every aiohttp failure comes out as a typed APIError."""

    __slots__ = ("_map", "_response")

    def __init__(
        self, response: aiohttp.ClientResponse, map_exception: Callable[[BaseException], APIError]
    ) -> None:
        self._response = response
        # The transport's own mapping, passed in: importing it here would make an import cycle.
        self._map = map_exception

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._response.content.iter_any():
                yield data
        except _MAPPED as exc:
            # Never chained to a ClientResponseError: it carries the request's headers.
            raise self._map(exc) from None

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _MAPPED as exc:
            raise self._map(exc) from None

    async def aclose(self) -> None:
        # close(), not release(): a reader who left must stop the server's generation.
        self._response.close()

    def __repr__(self) -> str:
        return f"AiohttpStream(status={self._response.status})"


async def open_aiohttp_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    timeout: float,
    map_exception: Callable[[BaseException], APIError],
) -> AiohttpStream:
    """POST ``body`` to ``url`` and return once headers arrive."""
    client_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=None)
    try:
        response = await session.post(url, data=body, timeout=client_timeout, allow_redirects=False)
    except _MAPPED as exc:
        raise map_exception(exc) from None
    return AiohttpStream(response, map_exception)
