"""The simulated xAI server: a real aiohttp app on 127.0.0.1.

Request path of a model call (``/v1/chat/completions``, ``/v1/responses``)::

    auth (401 / 400 wrong key) -> parse (400, 404 unknown model) -> fault? -> rate limits (429)
    -> latency -> answer (a stream: its first byte after a short time to first token, then
    the chunks spread over the rest of the latency)

Every decision after auth is the ``World``'s (``_world.py``), shared with the socket-free
``VirtualServer``; this module only speaks HTTP and waits in real time. Everything a client
could be graded on is counted in ``Simulator.stats``.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._batch_routes import register_batch_routes
from ._batches import BatchBook, BatchConfig
from ._catalogue import CATALOGUE, ResponseStore, model_object, register_catalogue_routes
from ._config import SimulatorConfig, SimulatorStats
from ._faults import incorrect_key_message
from ._latency import stream_pacing
from ._protocol import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    InvalidRequest,
    ModelCall,
    chat_body,
    error_body,
    mask_key,
    responses_body,
    tokenize,
)
from ._shapes import chat_events, request_shape, shaped
from ._stream_events import stream_chunks, write_stream
from ._stream_faults import STREAM_FAULT_KINDS, act_stream_fault
from ._world import Endpoint, Reply, World

DEFAULT_MODELS = CATALOGUE
MAX_BODY_BYTES = 64 * 1024 * 1024
JSON_TYPE = "application/json"
KNOWN_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/responses", "/v1/models", "/v1/api-key", "/v1/tokenize-text"}
)

Renderer = Callable[[ModelCall, str, int], dict[str, Any]]


class _Unchanged(enum.Enum):
    UNCHANGED = enum.auto()


UNCHANGED = _Unchanged.UNCHANGED
"""Sentinel for ``Simulator.set_limits``: leave this limit as it is."""


def _respond(
    status: int,
    body: bytes,
    request_id: str,
    extra: dict[str, str] | None = None,
    content_type: str = JSON_TYPE,
) -> web.Response:
    headers = {"Content-Type": content_type, "x-request-id": request_id}
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=body, headers=headers)


def _reply(reply: Reply, request_id: str) -> web.Response:
    return _respond(reply.status, reply.body, request_id, reply.headers or None, reply.content_type)


def _abort(request: web.Request) -> web.Response:
    """Drop the connection without an answer; the returned response is never written."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


class Simulator:
    """A local xAI-compatible API server that enforces limits strictly and injects faults.

    ``async with Simulator(SimulatorConfig(...)) as sim:`` starts it on a free port; point a
    client at ``sim.base_url``.
    """

    __slots__ = (
        "_host",
        "_now",
        "_requested_port",
        "_runner",
        "_stopping",
        "_world",
        "base_url",
        "batches",
        "config",
        "port",
        "responses",
        "stats",
    )

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: Callable[[], float] = time.monotonic,
        batch: BatchConfig | None = None,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        # ``now`` is the referee's clock (buckets, limit changes); latency still passes in real
        # time. Tests freeze it to compare answers with the VirtualServer's exactly.
        self._now = now
        self._world = World(self.config, now=now())
        self.stats: SimulatorStats = self._world.stats
        self.responses = ResponseStore()
        """Stored ``/v1/responses`` answers (``responses.retrieve``)."""
        self.batches = BatchBook(batch)
        """The Batch API's state (``batches.stats``: what clients did to it)."""
        self._host = host
        self._requested_port = port
        self.port = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    def __repr__(self) -> str:
        state = "running" if self._runner is not None else "stopped"
        return (
            f"Simulator({state}, base_url={self.base_url!r}, config={self.config!r}, "
            f"in_flight={self.stats.in_flight}, world={self._world!r})"
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        """Listen and return the base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self._runner is not None:
            return self.base_url
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/api-key", self._api_key)
        app.router.add_post("/v1/tokenize-text", self._tokenize)
        names = lambda: self.config.model_names or DEFAULT_MODELS  # noqa: E731
        register_catalogue_routes(app, names, self.responses, self._authenticate)
        register_batch_routes(app, self.batches, lambda: self._world, self._now, self._authenticate)
        app.router.add_route("*", "/{tail:.*}", self._unrouted)
        # access_log off and no per-request logging: this server is driven at thousands of
        # requests per second by the benchmarks.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        await site.start()
        self._stopping = asyncio.Event()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.base_url = f"http://{host}:{self.port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening; hung requests are aborted at once, others get a moment to finish."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- control -------------------------------------------------------------------------

    def set_limits(
        self,
        *,
        requests_per_second: float | _Unchanged | None = UNCHANGED,
        tokens_per_minute: float | _Unchanged | None = UNCHANGED,
    ) -> None:
        """Change the limits live; ``None`` means unlimited, an omitted argument unchanged."""
        config = self.config
        old = (config.requests_per_second, config.tokens_per_minute)
        if not isinstance(requests_per_second, _Unchanged):
            config.requests_per_second = requests_per_second
        if not isinstance(tokens_per_minute, _Unchanged):
            config.tokens_per_minute = tokens_per_minute
        try:
            config.validate()
        except ValueError:
            config.requests_per_second, config.tokens_per_minute = old
            raise
        self._world.resync(self._now())

    def fail_next(self, kind: str, n: int = 1) -> None:
        """Force the next ``n`` model calls to fail with fault ``kind``."""
        self._world.fail_next(kind, n)

    def reset_stats(self) -> None:
        """Zero the counters (requests in flight stay counted)."""
        self.stats.reset()

    def _delay(self, call: ModelCall) -> float:
        return self._world.delay(call)

    # --- handlers ------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._counted(request, "chat", chat_body)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._counted(request, "responses", responses_body)

    async def _counted(
        self, request: web.Request, endpoint: Endpoint, render: Renderer
    ) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        try:
            return await self._model_call(request, endpoint, render)
        finally:
            stats.in_flight -= 1

    async def _model_call(
        self, request: web.Request, endpoint: Endpoint, render: Renderer
    ) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        denied = self._authenticate(request, request_id)
        if denied is not None:
            return denied
        world = self._world
        payload = await self._read_json(request, request_id)
        if isinstance(payload, web.Response):
            return payload
        call = world.parse(endpoint, payload)
        if isinstance(call, Reply):
            return _reply(call, request_id)
        try:
            shape = request_shape(endpoint, payload)
        except InvalidRequest as exc:
            self.stats.invalid_requests += 1
            return _respond(exc.status, error_body(exc.code, exc.message), request_id)
        kind = world.pick_fault()
        if kind is not None:
            faulted = await self._fault(kind, request, request_id, call, render, endpoint)
            if faulted is not None:
                return faulted
        grant = world.grant(call, self._now())
        if isinstance(grant, Reply):
            return _reply(grant, request_id)
        extra = grant.headers or None
        if call.stream:
            created = int(time.time())
            if endpoint == "chat" and shape is not None:
                chunks = chat_events(call, shape, request_id, created)
            else:
                chunks = stream_chunks(endpoint, call, request_id, created)
            first, gap = stream_pacing(self.config, grant.delay, len(chunks))
            try:
                if first > 0:
                    await asyncio.sleep(first)
                return await write_stream(request, chunks, gap, request_id, extra)
            finally:
                world.settle(grant, self._now())
        try:
            if grant.delay > 0:
                await asyncio.sleep(grant.delay)
        finally:
            # Settle even if the client went away: the work was done and is billed.
            world.settle(grant, self._now())
        answer = render(call, request_id, int(time.time()))
        body = json.dumps(shaped(endpoint, answer, shape, request_id)).encode()
        if endpoint == "responses":
            self.responses.keep(payload, body, request_id)
        return _respond(200, body, request_id, extra)

    def _authenticate(self, request: web.Request, request_id: str) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self.stats.auth_failures += 1
            return _respond(401, error_body(None, "Unauthorized"), request_id)
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            self.stats.auth_failures += 1
            body = error_body(INVALID_ARGUMENT, incorrect_key_message(token))
            return _respond(400, body, request_id)
        return None

    async def _read_json(self, request: web.Request, request_id: str) -> object:
        try:
            return json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            self.stats.invalid_requests += 1
            message = f"Request body larger than {MAX_BODY_BYTES} bytes"
            return _respond(413, error_body(INVALID_ARGUMENT, message), request_id)
        except ValueError:
            self.stats.invalid_requests += 1
            message = "Failed to deserialize the JSON body into the target type"
            return _respond(400, error_body(INVALID_ARGUMENT, message), request_id)

    async def _fault(
        self,
        kind: str,
        request: web.Request,
        request_id: str,
        call: ModelCall,
        render: Renderer,
        endpoint: Endpoint = "chat",
    ) -> web.StreamResponse | None:
        """Act out a fault; ``None`` means serve the request normally after all."""
        if kind == "reset":
            return _abort(request)
        if kind == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), self.config.hang_seconds)
            except TimeoutError:
                return None
            return _abort(request)
        if kind in STREAM_FAULT_KINDS:
            if not call.stream:
                return None
            headers = {"Content-Type": "text/event-stream", "x-request-id": request_id}
            return await act_stream_fault(
                kind,
                request,
                stream_chunks(endpoint, call, request_id, int(time.time())),
                headers,
                stopping=self._stopping,
                hang_seconds=self.config.hang_seconds,
            )
        if kind == "no_choices":
            body = render(call, request_id, int(time.time()))
            body.pop("choices", None)
            body.pop("output", None)
            return _respond(200, json.dumps(body).encode(), request_id)
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        return _reply(self._world.fault_reply(kind, token.strip()), request_id)

    async def _models(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        self.stats.requests += 1
        denied = self._authenticate(request, request_id)
        if denied is not None:
            return denied
        names = self.config.model_names or DEFAULT_MODELS
        data = [model_object(name) for name in names]
        body = json.dumps({"object": "list", "data": data}).encode()
        return _respond(200, body, request_id)

    async def _api_key(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        self.stats.requests += 1
        denied = self._authenticate(request, request_id)
        if denied is not None:
            return denied
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        info = {
            "redacted_api_key": mask_key(token.strip()),
            "user_id": "simulated-user",
            "name": "simulator",
            "create_time": "2026-01-01T00:00:00Z",
            "modify_time": "2026-01-01T00:00:00Z",
            "modified_by": "simulated-user",
            "team_id": self.config.team_id,
            "acls": ["api-key:model:*", "api-key:endpoint:*"],
            "api_key_id": "simulated-key",
            "team_blocked": False,
            "api_key_blocked": False,
            "api_key_disabled": False,
        }
        return _respond(200, json.dumps(info).encode(), request_id)

    async def _tokenize(self, request: web.Request) -> web.Response:
        """Exact token ids; like xAI, this costs one request of the rate limit."""
        request_id = str(uuid.uuid4())
        self.stats.requests += 1
        denied = self._authenticate(request, request_id)
        if denied is not None:
            return denied
        payload = await self._read_json(request, request_id)
        if isinstance(payload, web.Response):
            return payload
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            self.stats.invalid_requests += 1
            body = error_body(INVALID_ARGUMENT, "text: field required and must be a string")
            return _respond(400, body, request_id)
        model = payload.get("model") if isinstance(payload, dict) else None
        admitted = self._world.admit_tokenize(str(model or ""), self._now())
        if isinstance(admitted, Reply):
            return _reply(admitted, request_id)
        body = json.dumps({"token_ids": tokenize(text)}).encode()
        return _respond(200, body, request_id, admitted or None)

    async def _unrouted(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        self.stats.requests += 1
        if request.path in KNOWN_PATHS:
            body = error_body(None, f"Method {request.method} not allowed for {request.path}")
            return _respond(405, body, request_id)
        body = error_body(NOT_FOUND, f"No such endpoint: {request.method} {request.path}")
        return _respond(404, body, request_id)
