"""AsyncHTTPTransport: the scheduler as the HTTP layer of an httpx client (openai, LangChain).

``AsyncOpenAI(..., http_client=async_http_client(scheduler), max_retries=0)`` sends each
``chat/completions`` and ``responses`` call through the scheduler's queue, per-model limits,
retries and breaker, and hands the SDK the server's last answer (status, headers, body), so the
SDK raises the exceptions its users already catch. Other calls (``models.list``, files, ...) are
not rate-limited model calls: they go straight to the network with the client's own URL and key.

What is scheduled goes to the *scheduler's* base URL with the *scheduler's* key; the client's
base URL only names the endpoint. Streaming requests (``stream: true``) are scheduled the same
way and answered as a stream: the server's SSE frames reach the SDK as they arrive
(:mod:`.._core._raw_stream`); a stream that fails before its first frame is answered with the
server's last response, as a non-streamed call is.

httpx is an optional extra (``grok-scheduler[openai]``); this module is imported only when
``grok_scheduler.AsyncHTTPTransport`` is first used. Requests built by httpx2 (which newer
openai-python releases use) are answered in httpx2's own types.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .._core._raw_stream import RawStream, send_raw_stream
from .._core._scheduler import Scheduler
from .._errors import APITimeoutError, SchedulerError
from .._observe._events import events as _log
from .._wire._error_answer import error_answer, error_body
from ._routing import PRIORITY_HEADER, parse_priority, scheduled_endpoint
from ._sse_out import SSE_HEADERS, sse_bytes

__all__ = ["AsyncHTTPTransport", "async_http_client"]

# openai-python and the SDKs generated like it number their own retries in this header.
_SDK_RETRY_HEADER = "x-stainless-retry-count"
# The body is handed over already decoded: framing headers of the upstream answer would lie.
_DROPPED_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection"}
)


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends model calls through a :class:`Scheduler`.

    Turn the client's own retries off (``max_retries=0``): they would bypass the limiter. A
    warning is logged once when the SDK's retry header shows it retrying.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._passthrough: dict[str, httpx.AsyncBaseTransport] = {}
        self._warned = False

    def __repr__(self) -> str:
        return f"AsyncHTTPTransport(scheduler={self._scheduler!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Schedule a model call; pass anything else through unchanged."""
        http = _module_of(request)
        endpoint = scheduled_endpoint(request.method, request.url.path)
        if endpoint is None:
            return await self._pass_through(http, request)
        self._check_sdk_retries(request)
        try:
            priority = _priority_of(request)
            content = await request.aread()
            body = json.loads(content)
            if not isinstance(body, dict):
                raise ValueError("the request body is not a JSON object")
        except ValueError as exc:
            return _answer(http, request, 400, error_body("invalid-argument", str(exc)))
        try:
            if body.get("stream"):
                raw = send_raw_stream(self._scheduler, endpoint, body, priority=priority)
                started = await raw.started()
                if started is None:
                    streamed: httpx.Response = http.Response(
                        200, headers=SSE_HEADERS, stream=_stream_type(http)(raw), request=request
                    )
                    return streamed
                answer = started
            else:
                answer = await self._scheduler.send_raw(
                    endpoint, body, priority=priority, encoded=content
                )
        except SchedulerError as exc:
            mapped = error_answer(exc)
            if mapped is None:
                kind = http.ReadTimeout if isinstance(exc, APITimeoutError) else http.ConnectError
                raise kind(str(exc), request=request) from exc
            return _answer(http, request, *mapped)
        headers = {
            name: value
            for name, value in answer.headers.items()
            if name.lower() not in _DROPPED_HEADERS
        }
        return _answer(http, request, answer.status, answer.body, headers)

    async def _pass_through(self, http: Any, request: httpx.Request) -> httpx.Response:
        transport = self._passthrough.get(http.__name__)
        if transport is None:
            transport = self._passthrough[http.__name__] = http.AsyncHTTPTransport()
        return await transport.handle_async_request(request)

    def _check_sdk_retries(self, request: httpx.Request) -> None:
        if self._warned:
            return
        try:
            retries = int(request.headers.get(_SDK_RETRY_HEADER, "0"))
        except ValueError:
            return
        if retries > 0:
            self._warned = True
            _log.warning(
                "grok_scheduler.client_retries_on",
                hint="create the client with max_retries=0: its retries bypass the limiter",
            )

    async def aclose(self) -> None:
        """Close the pass-through connections (the scheduler is closed by its owner)."""
        for transport in self._passthrough.values():
            await transport.aclose()
        self._passthrough.clear()


def async_http_client(scheduler: Scheduler, **client_options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose calls go through ``scheduler`` (see the module's notes).

    The client waits as long as the scheduler does: queueing, pacing and retries are part of
    one call, so httpx's own timeout is off unless ``timeout=`` is given.
    """
    client_options.setdefault("timeout", None)
    return httpx.AsyncClient(transport=AsyncHTTPTransport(scheduler), **client_options)


class _SseBody:
    """A raw stream as an httpx response body (mixed into the client's AsyncByteStream)."""

    def __init__(self, raw: RawStream) -> None:
        self._raw = raw

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in sse_bytes(self._raw):
            yield chunk

    async def aclose(self) -> None:
        # The SDK closed the response (read to the end, or left early): settle the call.
        await self._raw.aclose()


_STREAM_TYPES: dict[str, type[_SseBody]] = {}


def _stream_type(http: Any) -> type[_SseBody]:
    """``_SseBody`` as the AsyncByteStream of ``http`` (httpx or httpx2): each checks its own."""
    found = _STREAM_TYPES.get(http.__name__)
    if found is None:
        found = _STREAM_TYPES[http.__name__] = type("SseBody", (_SseBody, http.AsyncByteStream), {})
    return found


def _module_of(request: httpx.Request) -> Any:
    """The httpx-like module (httpx or httpx2) whose types the request's client expects."""
    return sys.modules[type(request).__module__.partition(".")[0]]


def _priority_of(request: httpx.Request) -> int | None:
    value = request.headers.get(PRIORITY_HEADER)
    if value is None:
        return None
    # Never sent upstream: the scheduler sends the body alone, with its own headers.
    del request.headers[PRIORITY_HEADER]
    return parse_priority(value)


def _answer(
    http: Any,
    request: httpx.Request,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    headers = headers or {"content-type": "application/json"}
    response: httpx.Response = http.Response(status, headers=headers, content=body, request=request)
    return response
