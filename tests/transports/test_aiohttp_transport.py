"""The aiohttp transport's exception mapping: aiohttp's errors become ours, key never chained."""

from __future__ import annotations

import asyncio
import socket
import ssl
import traceback
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from grok_scheduler import AiohttpTransport
from grok_scheduler._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    RateLimitError,
)
from grok_scheduler._transports._aiohttp import map_exception
from grok_scheduler._wire._classify import classify_exception

KEY = "xai-TRANSPORTcanary0123456789abcdefXYZ"
SECRET_PART = KEY.removeprefix("xai-")


def _connection_key() -> Any:
    return aiohttp.client_reqrep.ConnectionKey("api.x.ai", 443, True, True, None, None, None)


def _request_info(authorization: str | None = None) -> aiohttp.RequestInfo:
    url = URL("https://api.x.ai/v1/chat/completions")
    headers = CIMultiDict({"Authorization": authorization} if authorization else {})
    return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(headers), url)


# aiohttp's exceptions and what the transport lets through from asyncio, ssl and the OS.
MAPPING: list[tuple[BaseException, type[APIError], bool]] = [
    (TimeoutError(), APITimeoutError, True),  # asyncio.TimeoutError is this class
    (TimeoutError("read"), APITimeoutError, True),
    (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), APITimeoutError, True),
    (aiohttp.ConnectionTimeoutError("Connection timeout"), APITimeoutError, True),
    (aiohttp.ServerDisconnectedError(), APIConnectionError, True),
    (aiohttp.ClientPayloadError("Response payload is not completed"), APIConnectionError, True),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), APIConnectionError, True),
    (
        aiohttp.ClientConnectorError(_connection_key(), ConnectionRefusedError(111, "refused")),
        APIConnectionError,
        True,
    ),
    (ConnectionResetError(104, "reset"), APIConnectionError, True),
    (socket.gaierror(-2, "Name or service not known"), APIConnectionError, True),
    (OSError(113, "No route to host"), APIConnectionError, True),
    (aiohttp.ClientError("generic"), APIConnectionError, True),
    (aiohttp.InvalidURL("not a url"), APIConnectionError, False),
    (
        aiohttp.TooManyRedirects(_request_info(), (), status=301, message="Moved"),
        APIConnectionError,
        False,
    ),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), APIConnectionError, False),
    (ValueError("programming error"), APIConnectionError, False),
]


@pytest.mark.parametrize(("exc", "cls", "retryable"), MAPPING)
def test_map_exception(exc: BaseException, cls: type[APIError], retryable: bool) -> None:
    """Timeouts and connection failures retry; bad URLs, redirects and certificates do not."""
    error = map_exception(exc)
    verdict = classify_exception(error)
    assert type(error) is cls
    assert verdict.error is error
    assert verdict.retryable is retryable
    assert type(exc).__name__ in error.message
    assert (verdict.retry_after, verdict.limit_dimension, verdict.is_rate_limit) == (
        None,
        None,
        False,
    )


@pytest.mark.parametrize(
    "exc", [exc for exc, _, _ in MAPPING if not type(exc).__module__.startswith("aiohttp")]
)
def test_mapping_agrees_with_plain_classification(exc: BaseException) -> None:
    """For what is not aiohttp's own, the transport says what classification says anyway."""
    mapped, plain = map_exception(exc), classify_exception(exc)
    assert (type(mapped), mapped.message) == (type(plain.error), plain.error.message)
    assert classify_exception(mapped).retryable is plain.retryable


def test_exception_message_hides_url_credentials() -> None:
    """A URL with credentials in an exception never reaches the message."""
    error = map_exception(aiohttp.InvalidURL("https://me:hunter2@api.x.ai/?api_key=xyz"))
    assert "hunter2" not in error.message
    assert "xyz" not in error.message


def test_response_error_from_raise_for_status() -> None:
    """A ClientResponseError is classified by its status like a response."""
    exc = aiohttp.ClientResponseError(
        _request_info(),
        (),
        status=429,
        message="Too Many Requests",
        headers=CIMultiDictProxy(CIMultiDict({"Retry-After": "2"})),
    )
    verdict = classify_exception(map_exception(exc))
    assert type(verdict.error) is RateLimitError
    assert (verdict.retryable, verdict.retry_after) == (True, 2.0)


def test_content_type_error_is_validation_error() -> None:
    """A 2xx body that is not JSON is a fatal validation error."""
    exc = aiohttp.ContentTypeError(_request_info(), (), status=200, message="not json")
    verdict = classify_exception(map_exception(exc))
    assert type(verdict.error) is APIResponseValidationError
    assert not verdict.retryable


# --- through send() ---------------------------------------------------------------------------


class _Raising:
    """Stands in for aiohttp's session: every post raises ``exc`` when entered."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def post(self, *args: object, **kwargs: object) -> _Raising:
        return self

    async def __aenter__(self) -> None:
        raise self.exc

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def close(self) -> None:
        return None


async def _send_raising(exc: BaseException) -> APIError:
    transport = AiohttpTransport(base_url="https://api.x.ai/v1", api_key=KEY, max_connections=1)
    transport._session = _Raising(exc)  # type: ignore[assignment]
    with pytest.raises(APIError) as raised:
        await transport.send("chat/completions", b"{}", timeout=1.0)
    return raised.value


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((current.__cause__, current.__context__))


def _assert_no_key(error: BaseException) -> None:
    text = "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error))]
        + [repr(getattr(e, "request_info", None)) for e in _chain(error)]
    )
    assert KEY not in text
    assert SECRET_PART[:12] not in text


@pytest.mark.parametrize(
    ("exc", "cls", "retryable"),
    [case for case in MAPPING if not isinstance(case[0], ValueError)],
)
async def test_send_raises_typed_errors(
    exc: BaseException, cls: type[APIError], retryable: bool
) -> None:
    """send() raises our error and verdict; the original is chained unless it carries headers."""
    error = await _send_raising(exc)
    assert type(error) is cls
    assert classify_exception(error).retryable is retryable
    if isinstance(exc, aiohttp.ClientResponseError):
        assert error.__cause__ is None
        assert error.__context__ is None
    else:
        assert error.__cause__ is exc
    _assert_no_key(error)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientResponseError(
            _request_info(f"Bearer {KEY}"),
            (),
            status=503,
            message="Service Unavailable",
            headers=CIMultiDictProxy(CIMultiDict({"x-request-id": "r-1"})),
        ),
        aiohttp.ContentTypeError(
            _request_info(f"Bearer {KEY}"), (), status=200, message="not json"
        ),
        aiohttp.TooManyRedirects(_request_info(f"Bearer {KEY}"), (), status=301, message="Moved"),
    ],
)
async def test_response_errors_never_chain_the_request_headers(
    exc: aiohttp.ClientResponseError,
) -> None:
    """A ClientResponseError holds the Authorization header: it is neither cause nor context."""
    error = await _send_raising(exc)
    assert all(not isinstance(e, aiohttp.ClientResponseError) for e in _chain(error))
    assert error.__cause__ is None and error.__context__ is None
    _assert_no_key(error)


async def test_programming_errors_propagate_untyped() -> None:
    """What is not a transport failure is not disguised as one (classified fatal later)."""
    transport = AiohttpTransport(base_url="https://api.x.ai/v1", api_key=KEY, max_connections=1)
    transport._session = _Raising(ValueError("bug"))  # type: ignore[assignment]
    with pytest.raises(ValueError):
        await transport.send("chat/completions", b"{}", timeout=1.0)
    assert classify_exception(ValueError("bug")).retryable is False


async def test_cancellation_is_not_mapped() -> None:
    """Cancellation passes through the transport untouched."""
    transport = AiohttpTransport(base_url="https://api.x.ai/v1", api_key=KEY, max_connections=1)
    transport._session = _Raising(asyncio.CancelledError())  # type: ignore[assignment]
    with pytest.raises(asyncio.CancelledError):
        await transport.send("chat/completions", b"{}", timeout=1.0)


async def test_connection_refused_for_real() -> None:
    """A closed local port: a retryable APIConnectionError caused by aiohttp's connector error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpTransport(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_connections=1
    )
    try:
        with pytest.raises(APIConnectionError) as raised:
            await transport.send("chat/completions", b"{}", timeout=5.0)
    finally:
        await transport.aclose()
    error = raised.value
    assert type(error) is APIConnectionError
    assert isinstance(error.__cause__, aiohttp.ClientConnectorError)
    assert classify_exception(error).retryable is True
    _assert_no_key(error)


def test_repr_hides_the_key() -> None:
    """The transport shows its base URL, never the key."""
    transport = AiohttpTransport(base_url="https://api.x.ai/v1", api_key=KEY, max_connections=1)
    assert repr(transport) == "AiohttpTransport(base_url='https://api.x.ai/v1/')"
