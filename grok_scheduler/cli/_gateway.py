"""The gateway: an OpenAI/xAI-compatible HTTP server whose model calls share one scheduler.

Every app on a machine (any language) points its base URL at the gateway and so shares one set
of limits. ``POST /v1/chat/completions`` and ``/v1/responses`` are scheduled (priority from the
``x-grok-scheduler-priority`` header); ``GET /v1/models`` is passed through; ``/healthz``
answers while the gateway accepts work, ``/metrics`` in the Prometheus format.

Security: the upstream key stays here (the scheduler holds it): it is never returned, logged or
forwarded to clients, and a client's own ``Authorization`` is never sent upstream. With client
keys set, each call must carry one of them (compared in constant time). Bodies are capped.
Streaming requests are scheduled alike and their SSE frames written through as they come.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from .._adapters._routing import PRIORITY_HEADER, parse_priority, scheduled_endpoint
from .._adapters._sse_out import SSE_HEADERS, sse_bytes
from .._core._raw_stream import RawStream, send_raw_stream
from .._core._scheduler import Scheduler
from .._errors import SchedulerError
from .._wire._error_answer import error_answer, error_body

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Answer", "Gateway"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_JSON = "application/json"
# The answer's body is written already decoded and framed anew by aiohttp.
_DROPPED_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection"}
)
_PASS_THROUGH_TIMEOUT = aiohttp.ClientTimeout(total=30)


Answer = tuple[int, bytes, dict[str, str]]
"""A whole answer for a client: status, body, headers (the server adds framing and Date)."""

_UNAUTHORISED = "Unauthorized: not a client key of this gateway"


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    return status, body, headers or {"Content-Type": _JSON}


def _reply(answer: Answer) -> web.Response:
    status, body, headers = answer
    return web.Response(status=status, body=body, headers=headers)


async def _write_stream(request: web.Request, raw: RawStream) -> web.StreamResponse:
    """Write a started raw stream through; a client that leaves has its call closed.

    A client that leaves while the server is silent is noticed only when the runner cancels
    handlers of lost connections (``handler_cancellation=True``, as ``serve`` sets it).
    """
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    try:
        await response.prepare(request)
        async for chunk in sse_bytes(raw):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left: nobody reads the rest, the finally closes the call
    except asyncio.CancelledError:
        raw.cancel()
        raise
    finally:
        await raw.aclose()
    return response


class Gateway:
    """The gateway's routes over one started :class:`Scheduler`; :meth:`app` builds the server."""

    __slots__ = (
        "_accepting",
        "_client_keys",
        "_key",
        "_max_body",
        "_pass_through",
        "_scheduler",
        "_upstream",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        upstream_url: str,
        api_key: str,
        client_keys: Sequence[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._scheduler = scheduler
        self._upstream = upstream_url.rstrip("/")
        self._key = api_key
        self._client_keys = tuple(key.encode() for key in client_keys)
        self._max_body = max_body_bytes
        self._accepting = True
        self._pass_through: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        # Never the upstream key nor the client keys: only how many of the latter there are.
        return (
            f"Gateway(upstream={self._upstream!r}, client_keys={len(self._client_keys)}, "
            f"max_body_bytes={self._max_body}, accepting={self._accepting})"
        )

    def app(self, *, metrics: bool = True) -> web.Application:
        """The aiohttp application (bodies over the cap are refused by aiohttp with 413).

        ``metrics=False`` leaves ``/metrics`` to :meth:`metrics_app` on a port of its own.
        """
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/v1/chat/completions", self._model_call)
        app.router.add_post("/v1/responses", self._model_call)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/healthz", self._healthz)
        if metrics:
            app.router.add_get("/metrics", self._metrics)
        app.on_cleanup.append(self._close_pass_through)
        return app

    def metrics_app(self) -> web.Application:
        """``/metrics`` and ``/healthz`` alone, for ``serve --metrics-port``."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    def stop_accepting(self) -> None:
        """From now on model calls get 503 and /healthz fails (calls in flight finish)."""
        self._accepting = False

    def authorised(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries a client key (always, with none)."""
        if not self._client_keys:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        given = token.strip().encode()
        # Every key is compared, whatever matched: the time taken says nothing about which.
        matched = False
        for key in self._client_keys:
            matched |= hmac.compare_digest(given, key)
        return scheme.lower() == "bearer" and matched

    def refusal(self, authorization: str | None) -> Answer | None:
        """The 401 or 503 a model call gets before its body is read; None to go on."""
        if not self.authorised(authorization):
            return _answer(401, error_body(None, _UNAUTHORISED))
        if not self._accepting:
            return _answer(503, error_body("unavailable", "the gateway is shutting down"))
        return None

    def too_large(self) -> Answer:
        """The 413 of a body over the cap."""
        message = f"the request body is larger than {self._max_body} bytes"
        return _answer(413, error_body("request-too-large", message))

    async def model_call(
        self, endpoint: str, raw: bytes, priority_header: str | None
    ) -> Answer | RawStream:
        """Schedule one authorised model call: the answer, or a started stream to write through.

        Server-neutral: the aiohttp routes and the lean server (``_lean_server.py``) both call
        it with the body as read, so clients get the same status, headers and body from either.
        """
        try:
            priority = parse_priority(priority_header) if priority_header is not None else None
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the request body is not a JSON object")
            # A call that names no model is the gateway's model's (``serve --model``): say so
            # upstream too, or the server refuses what the gateway scheduled under that model.
            # (An explicit null or "" is the client's to answer for: the server's 400 reaches
            # it, as through the transport.) Otherwise the client's own bytes are sent.
            encoded: bytes | None = raw
            if "model" not in body:
                body["model"] = self._scheduler.model
                encoded = None
        except ValueError as exc:
            return _answer(400, error_body("invalid-argument", str(exc)))
        try:
            if body.get("stream"):
                stream = send_raw_stream(self._scheduler, endpoint, body, priority=priority)
                started = await stream.started()
                if started is None:
                    return stream
                answer = started
            else:
                answer = await self._scheduler.send_raw(
                    endpoint, body, priority=priority, encoded=encoded
                )
        except SchedulerError as exc:
            mapped = error_answer(exc)
            if mapped is None:
                # No answer from upstream at all: the gateway's own 502, as proxies say it.
                return _answer(502, error_body("bad-gateway", str(exc)))
            return _answer(*mapped)
        headers = {
            name: value
            for name, value in answer.headers.items()
            if name.lower() not in _DROPPED_HEADERS
        }
        return answer.status, answer.body, headers

    async def _model_call(self, request: web.Request) -> web.StreamResponse:
        refused = self.refusal(request.headers.get("Authorization"))
        if refused is not None:
            return _reply(refused)
        endpoint = scheduled_endpoint(request.method, request.path)
        assert endpoint is not None  # only the scheduled routes lead here
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _reply(self.too_large())
        answer = await self.model_call(endpoint, raw, request.headers.get(PRIORITY_HEADER))
        if isinstance(answer, RawStream):
            return await _write_stream(request, answer)
        return _reply(answer)

    def _pass_through_session(self) -> aiohttp.ClientSession:
        """One pooled session for calls passed through (a session per call built a pool each).

        No cookie jar: each call stays as independent of the others as with a session each.
        """
        if self._pass_through is None or self._pass_through.closed:
            self._pass_through = aiohttp.ClientSession(
                timeout=_PASS_THROUGH_TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._pass_through

    async def _close_pass_through(self, _app: web.Application) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pass-through session (the aiohttp app does so at cleanup)."""
        if self._pass_through is not None:
            await self._pass_through.close()
            self._pass_through = None

    async def models(self, authorization: str | None) -> Answer:
        """``GET /v1/models``, passed through with the upstream key."""
        if not self.authorised(authorization):
            return _answer(401, error_body(None, _UNAUTHORISED))
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            async with self._pass_through_session().get(
                self._upstream + "/models", headers=headers, allow_redirects=False
            ) as upstream:
                body = await upstream.read()
                content_type = upstream.headers.get("Content-Type", _JSON)
                return _answer(upstream.status, body, {"Content-Type": content_type})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return _answer(502, error_body("bad-gateway", type(exc).__name__))

    def health(self) -> Answer:
        """``/healthz``: 200 while accepting work, 503 once draining."""
        if not self._accepting or self._scheduler.closed:
            return _answer(503, b'{"status":"draining"}')
        return _answer(200, b'{"status":"ok"}')

    def metrics(self) -> Answer:
        """``/metrics`` in the Prometheus text format (501 without the metrics extra)."""
        try:
            from .._observe._metrics import render_metrics

            text = render_metrics(self._scheduler)
        except ImportError:
            return _answer(501, error_body("unimplemented", "pip install grok-scheduler[metrics]"))
        return 200, text, {"Content-Type": "text/plain; version=0.0.4"}

    async def _models(self, request: web.Request) -> web.Response:
        return _reply(await self.models(request.headers.get("Authorization")))

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _reply(self.health())

    async def _metrics(self, _request: web.Request) -> web.Response:
        return _reply(self.metrics())
