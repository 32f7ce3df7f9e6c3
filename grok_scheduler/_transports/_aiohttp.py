"""AiohttpTransport: HTTP over aiohttp, and the one place aiohttp's exceptions become ours.

As httpx's default transport maps httpcore's exceptions, this module maps aiohttp's (and the
asyncio, ssl and OS errors it lets through) to :class:`APIConnectionError` /
:class:`APITimeoutError` with their retry verdict attached, so nothing past the transport ever
sees an aiohttp type.
"""

from __future__ import annotations

import io
import ssl

import aiohttp

from .._errors import APIError, APIResponseValidationError
from .._wire._classify import (
    Verdict,
    carry,
    classify_response,
    connection_error,
    describe_exception,
    timeout_error,
)
from ._aiohttp_stream import AiohttpStream, open_aiohttp_stream
from ._base import TransportResponse

__all__ = ["AiohttpTransport", "map_exception"]

_LARGE_BODY = 1024 * 1024

# Raised for a request that can never succeed as written: retrying only repeats the failure.
_NEVER_SUCCEEDS: tuple[type[BaseException], ...] = (
    aiohttp.InvalidURL,
    aiohttp.TooManyRedirects,
    aiohttp.ClientConnectorCertificateError,
    ssl.SSLCertVerificationError,
)
# What send() maps; anything else (a programming error) propagates and is classified as fatal.
_MAPPED: tuple[type[Exception], ...] = (aiohttp.ClientError, OSError, TimeoutError)


class AiohttpTransport:
    """HTTP over aiohttp with a pooled connector sized to the scheduler's concurrency."""

    __slots__ = ("_authorization", "_base_url", "_max_connections", "_session", "_timeout")

    def __init__(self, *, base_url: str, api_key: str, max_connections: int) -> None:
        self._base_url = base_url.rstrip("/") + "/"
        # Kept only as the ready-made header value, never exposed by repr or attributes' names.
        self._authorization = f"Bearer {api_key}"
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # The last call's timeout object: calls of one model mostly share a bound, and building
        # a ClientTimeout per call was a measurable part of the gateway's work per request.
        self._timeout = aiohttp.ClientTimeout(total=None)

    def _client_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        if self._timeout.total != seconds:
            self._timeout = aiohttp.ClientTimeout(total=seconds)
        return self._timeout

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
        """POST ``body``; aiohttp's failures are raised as typed :class:`APIError` subclasses."""
        try:
            return await self._post(path, body, timeout)
        except _MAPPED as exc:
            if not isinstance(exc, aiohttp.ClientResponseError):
                raise map_exception(exc) from exc
            error = map_exception(exc)
        # A ClientResponseError holds the request's headers, the Authorization key among them:
        # raised out here, with no cause, it is not even the new error's __context__.
        raise error from None

    async def _post(self, path: str, body: bytes, timeout: float) -> TransportResponse:
        session = self._session or self._open()
        client_timeout = self._client_timeout(timeout)
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

    async def open_stream(self, path: str, body: bytes, *, timeout: float) -> AiohttpStream:
        """POST ``body`` and return its streamed answer once headers arrive."""
        session = self._session or self._open()
        return await open_aiohttp_stream(
            session, self._base_url + path, body, timeout, map_exception
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"AiohttpTransport(base_url={self._base_url!r})"


def map_exception(exc: BaseException) -> APIError:
    """The typed error, with its retry verdict, for an exception aiohttp raised during a call.

    Bad URLs, redirects and certificate failures are fatal; timeouts retry as
    :class:`APITimeoutError`; other client, connection and OS errors retry as
    :class:`APIConnectionError`; a ``ClientResponseError`` is classified by its status like a
    response. Messages name the exception's type and are redacted. Chaining is the caller's
    job, and a ``ClientResponseError`` must never be chained (it carries the request headers).
    """
    if isinstance(exc, _NEVER_SUCCEEDS):
        return connection_error(exc, retryable=False)
    # asyncio.TimeoutError is TimeoutError since Python 3.11; aiohttp's timeouts subclass it.
    if isinstance(exc, TimeoutError):
        return timeout_error(exc)
    if isinstance(exc, aiohttp.ClientResponseError):
        return carry(_response_verdict(exc))
    if isinstance(exc, aiohttp.ClientError | OSError):
        return connection_error(exc, retryable=True)
    return connection_error(exc, retryable=False)


def _response_verdict(exc: aiohttp.ClientResponseError) -> Verdict:
    """``raise_for_status()`` errors carry a status; classify them like the response."""
    if isinstance(exc, aiohttp.ContentTypeError) or exc.status < 400:
        error = APIResponseValidationError(describe_exception(exc), status_code=exc.status)
        return Verdict(
            error=error,
            retryable=False,
            retry_after=None,
            limit_dimension=None,
            is_rate_limit=False,
        )
    headers = exc.headers if exc.headers is not None else {}
    return classify_response(exc.status, headers, exc.message.encode("utf-8", "replace"))
