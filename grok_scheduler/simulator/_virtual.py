"""The simulator in virtual time: the same world as the aiohttp server, without sockets.

``VirtualServer(config, now=clock.now, sleep=clock.sleep)`` answers ``handle(path, body)``
with the status, body bytes and headers the aiohttp ``Simulator`` would send for the same
config, but it reads time only from ``now`` and waits only through ``sleep``: on a fake clock
a run of hours of simulated traffic takes milliseconds and is exactly repeatable.

What cannot happen without a socket is mapped: a ``reset`` fault raises
``ConnectionResetError``, and there is no authentication (a handler receives no headers).

Streams: a call with ``stream=true`` answers with its SSE events in ``chunks`` (``body`` is them
joined). The stream fault kinds (``stream_hang_first`` ... ``stream_no_done``) are acted out
as on the socket server: ``chunks`` holds what is sent before the break and ``then`` how the
stream ends; :meth:`VirtualServer.chunks` yields them on the injected clock, sleeping through a
hang and raising ``ConnectionResetError`` where the socket server aborts the connection.

A healthy stream is paced as on the socket server: ``respond`` returns at the first byte (the
time to first token) and ``chunks`` sleeps ``gap`` before each later chunk, so the last one
arrives when a plain answer would. ``handle`` waits the whole latency, as before.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._config import SimulatorConfig, SimulatorStats
from ._latency import stream_pacing
from ._protocol import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    ModelCall,
    chat_body,
    error_body,
    responses_body,
)
from ._protocol import tokenize as tokenize_text
from ._stream_events import stream_chunks
from ._stream_faults import STREAM_FAULT_KINDS, plan_stream_fault
from ._world import Endpoint, RefusalKind, Reply, World

JSON_TYPE = "application/json"
_STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


@dataclass(frozen=True, slots=True)
class VirtualResponse:
    """One answer of the virtual server, with what a test wants to know about it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    refused: RefusalKind | None = None
    """For a 429 from the limits: ``requests``, ``tokens`` or ``unavailable`` (0/0)."""
    fault: str | None = None
    chunks: tuple[bytes, ...] = ()
    """A stream's SSE events one by one (what was sent before a stream fault broke it)."""
    then: str = "end"
    """How a stream ends after ``chunks``: ``end``, ``hang`` or ``reset``."""
    gap: float = 0.0
    """Seconds between a healthy stream's chunks (its first chunk is due at once)."""


class VirtualServer:
    """The simulated xAI API on an injected clock: ``await handle(path, body)``.

    ``path`` is an endpoint such as ``chat/completions`` or ``/v1/responses``; ``body`` the
    decoded JSON. ``stats`` and ``config`` work as on ``Simulator`` (the config stays mutable).
    """

    __slots__ = ("_ids", "_now", "_sleep", "_world", "config", "stats")

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self._now = now
        self._sleep = sleep
        self._world = World(self.config, now=now())
        self.stats: SimulatorStats = self._world.stats
        self._ids = 0

    def __repr__(self) -> str:
        return f"VirtualServer(now={self._now():.3f}, world={self._world!r})"

    def fail_next(self, kind: str, n: int = 1) -> None:
        """Force the next ``n`` model calls to fail with fault ``kind``."""
        self._world.fail_next(kind, n)

    def apply_config(self) -> None:
        """Re-shape every model's buckets to the edited config now, not at the next request."""
        self.config.validate()
        self._world.resync(self._now())

    async def handle(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        """Answer one request: ``(status, body bytes, headers)``."""
        response = await self.respond(path, body)
        if response.gap > 0 and len(response.chunks) > 1:
            await self._sleep(response.gap * (len(response.chunks) - 1))
        return response.status, response.body, response.headers

    async def chunks(self, response: VirtualResponse) -> AsyncIterator[bytes]:
        """A streamed answer's events as a client reads them, its fault acted out in time."""
        for number, chunk in enumerate(
            response.chunks or ((response.body,) if response.body else ())
        ):
            if number and response.gap > 0:
                await self._sleep(response.gap)
            yield chunk
        if response.then == "hang":
            await self._sleep(self.config.hang_seconds)
        if response.then != "end":
            raise ConnectionResetError("simulated connection reset mid-stream")

    async def respond(self, path: str, body: object) -> VirtualResponse:
        """Answer one request, saying also which model it was for and what refused it."""
        self._ids += 1
        request_id = f"sim-{self._ids:08d}"
        endpoint = path.strip("/").removeprefix("v1/")
        stats = self.stats
        stats.requests += 1
        if endpoint in ("chat/completions", "responses"):
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            try:
                kind: Endpoint = "chat" if endpoint == "chat/completions" else "responses"
                return await self._model_call(kind, body, request_id)
            finally:
                stats.in_flight -= 1
        if endpoint == "tokenize-text":
            return self._tokenize(body, request_id)
        message = f"No such endpoint: POST /{endpoint}"
        return _answer(Reply(404, error_body(NOT_FOUND, message)), request_id)

    async def _model_call(self, kind: Endpoint, body: object, request_id: str) -> VirtualResponse:
        world = self._world
        call = world.parse(kind, body)
        if isinstance(call, Reply):
            return _answer(call, request_id)
        fault = world.pick_fault()
        if fault is not None:
            faulted = await self._fault(fault, kind, call, request_id)
            if faulted is not None:
                return faulted
        grant = world.grant(call, self._now())
        if isinstance(grant, Reply):
            return _answer(grant, request_id, call.model)
        if call.stream:
            events = stream_chunks(kind, call, request_id, int(self._now()))
            first, gap = stream_pacing(self.config, grant.delay, len(events))
            try:
                if first > 0:
                    await self._sleep(first)
            finally:
                # Settled at the first byte: the chunks are yielded after respond returns.
                world.settle(grant, self._now())
            reply = Reply(200, b"".join(events), {**_STREAM_HEADERS, **grant.headers})
            streamed = _answer(reply, request_id, call.model, content_type=False)
            return dataclasses.replace(streamed, chunks=tuple(events), gap=gap)
        try:
            if grant.delay > 0:
                await self._sleep(grant.delay)
        finally:
            world.settle(grant, self._now())
        created = int(self._now())
        render = chat_body if kind == "chat" else responses_body
        answer = json.dumps(render(call, request_id, created)).encode()
        return _answer(Reply(200, answer, grant.headers), request_id, call.model)

    async def _fault(
        self, fault: str, kind: Endpoint, call: ModelCall, request_id: str
    ) -> VirtualResponse | None:
        if fault == "reset":
            raise ConnectionResetError("simulated connection reset")
        if fault == "hang":
            # No one can stop a virtual server early: the hang ends when it ends.
            await self._sleep(self.config.hang_seconds)
            return None
        if fault in STREAM_FAULT_KINDS:
            if not call.stream:
                return None  # as on the socket server: a plain call is served normally
            healthy = stream_chunks(kind, call, request_id, int(self._now()))
            plan = plan_stream_fault(fault, healthy)
            reply = Reply(200, b"".join(plan.sent), dict(_STREAM_HEADERS))
            answer = _answer(reply, request_id, call.model, fault=fault, content_type=False)
            return dataclasses.replace(answer, chunks=tuple(plan.sent), then=plan.then)
        if fault == "no_choices":
            render = chat_body if kind == "chat" else responses_body
            broken = render(call, request_id, int(self._now()))
            broken.pop("choices", None)
            broken.pop("output", None)
            reply = Reply(200, json.dumps(broken).encode())
            return _answer(reply, request_id, call.model, fault=fault)
        reply = self._world.fault_reply(fault, "")
        return _answer(reply, request_id, call.model, fault=fault)

    def _tokenize(self, body: object, request_id: str) -> VirtualResponse:
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            self.stats.invalid_requests += 1
            message = "text: field required and must be a string"
            return _answer(Reply(400, error_body(INVALID_ARGUMENT, message)), request_id)
        model = str(body.get("model") or "") if isinstance(body, dict) else ""
        admitted = self._world.admit_tokenize(model, self._now())
        if isinstance(admitted, Reply):
            return _answer(admitted, request_id, model)
        answer = json.dumps({"token_ids": tokenize_text(text)}).encode()
        return _answer(Reply(200, answer, admitted), request_id, model)


def _answer(
    reply: Reply,
    request_id: str,
    model: str | None = None,
    *,
    fault: str | None = None,
    content_type: bool = True,
) -> VirtualResponse:
    headers: dict[str, str] = {"Content-Type": reply.content_type} if content_type else {}
    headers["x-request-id"] = request_id
    headers.update(reply.headers)
    return VirtualResponse(reply.status, reply.body, headers, model, reply.refused, fault)
