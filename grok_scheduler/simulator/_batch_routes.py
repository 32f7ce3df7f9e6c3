"""The simulated Batch API's HTTP side: routes that hand each call to the :class:`BatchBook`.

``POST /v1/files``, ``POST /v1/batches``, ``POST /v1/batches/{id}/requests``,
``GET /v1/batches/{id}``, ``GET /v1/batches/{id}/results``, ``POST /v1/batches/{id}:cancel``.
Authentication is the server's own; every decision is the book's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from aiohttp import BodyPartReader, web

from ._batches import BatchBook
from ._protocol import INVALID_ARGUMENT, error_body
from ._world import Reply, World

__all__ = ["register_batch_routes"]

Authenticate = Callable[[web.Request, str], "web.Response | None"]


def _send(reply: Reply, request_id: str) -> web.Response:
    headers = {"Content-Type": reply.content_type, "x-request-id": request_id}
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def register_batch_routes(
    app: web.Application,
    book: BatchBook,
    world: Callable[[], World],
    now: Callable[[], float],
    authenticate: Authenticate,
) -> None:
    """Add the Batch API routes to ``app`` (before any catch-all route)."""
    # The id excludes ':' so that '{id}:cancel' is its own route.
    one = "/v1/batches/{batch_id:[^/:]+}"

    async def guarded(request: web.Request, act: Callable[[bytes], Reply]) -> web.Response:
        request_id = str(uuid.uuid4())
        denied = authenticate(request, request_id)
        if denied is not None:
            return denied
        raw = await request.read() if request.can_read_body else b""
        return _send(act(raw), request_id)

    def parsed(raw: bytes) -> object:
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def bad_json() -> Reply:
        return Reply(400, error_body(INVALID_ARGUMENT, "Failed to deserialize the JSON body"))

    async def upload(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        denied = authenticate(request, request_id)
        if denied is not None:
            return denied
        content = b""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    content = await part.read(decode=False)
        else:
            content = await request.read()
        return _send(book.upload(bytes(content)), request_id)

    async def create(request: web.Request) -> web.Response:
        def act(raw: bytes) -> Reply:
            payload = parsed(raw)
            return bad_json() if payload is None else book.create(payload, world(), now())

        return await guarded(request, act)

    async def add(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]

        def act(raw: bytes) -> Reply:
            payload = parsed(raw)
            if payload is None:
                return bad_json()
            return book.add(batch_id, len(raw), payload, world(), now())

        answer = await guarded(request, act)
        if book.config.add_latency > 0:
            await asyncio.sleep(book.config.add_latency)  # taken, but not yet answered
        return answer

    async def status(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        return await guarded(request, lambda _: book.status(batch_id, now()))

    async def results(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        token = request.query.get("pagination_token")
        limit_text = request.query.get("limit") or request.query.get("page_size")
        limit = int(limit_text) if limit_text and limit_text.isdigit() else None
        return await guarded(request, lambda _: book.results(batch_id, token, limit, now()))

    async def cancel(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        return await guarded(request, lambda _: book.cancel(batch_id, now()))

    app.router.add_post("/v1/files", upload)
    app.router.add_post("/v1/batches", create)
    app.router.add_post(one + ":cancel", cancel)
    app.router.add_post(one + "/requests", add)
    app.router.add_get(one + "/results", results)
    app.router.add_get(one, status)
