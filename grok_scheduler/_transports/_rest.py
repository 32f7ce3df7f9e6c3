"""REST calls of any method (the Batch API's GET, POST and ``:cancel``) over aiohttp.

The model-call transport only POSTs; the Batch API also reads. Errors map exactly as the
aiohttp transport maps them (:func:`~._aiohttp.map_exception`).
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from ._aiohttp import _MAPPED, map_exception
from ._base import TransportResponse

__all__ = ["AiohttpRest", "Rest"]


class Rest(Protocol):
    """One HTTP call relative to the base URL; the answer whatever its status."""

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, timeout: float = 60.0
    ) -> TransportResponse: ...

    async def aclose(self) -> None: ...


class AiohttpRest:
    """:class:`Rest` over one aiohttp session."""

    __slots__ = ("_authorization", "_base_url", "_session")

    def __init__(self, *, base_url: str, api_key: str) -> None:
        self._base_url = base_url.rstrip("/") + "/"
        self._authorization = f"Bearer {api_key}"  # never shown by repr
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"AiohttpRest(base_url={self._base_url!r})"

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, timeout: float = 60.0
    ) -> TransportResponse:
        """Send one call; aiohttp's failures raise typed :class:`APIError` subclasses."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={
                    "Authorization": self._authorization,
                    "Content-Type": "application/json",
                    "User-Agent": "grok-scheduler/0.1",
                }
            )
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                return TransportResponse(response.status, payload, response.headers)
        except _MAPPED as exc:
            if not isinstance(exc, aiohttp.ClientResponseError):
                raise map_exception(exc) from exc
            error = map_exception(exc)
        raise error from None  # never chained: the cause carries the request headers

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
