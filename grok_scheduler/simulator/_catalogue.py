"""Lookups by id, answered as xAI answers them: ``GET /v1/models/{id}`` and stored responses.

openai-python's ``models.retrieve`` and ``responses.retrieve``/``delete`` must meet the same
answers they meet on xAI: the model object or a 404 naming it; a response created with
``store`` (xAI's default) until it is deleted or pushed out, else a 404. The store is bounded:
a simulator driven at thousands of requests per second keeps only the latest answers.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._protocol import NOT_FOUND, error_body

__all__ = ["CATALOGUE", "ResponseStore", "model_object", "register_catalogue_routes"]

CATALOGUE = ("grok-4", "grok-4.3", "grok-4-fast", "grok-3-mini")
"""The models the simulator lists when its configuration names none (grok-4: the default)."""

_CREATED = 1_767_225_600
Authenticate = Callable[[web.Request, str], web.Response | None]


def model_object(name: str) -> dict[str, Any]:
    """One entry of ``/v1/models``."""
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": "xai"}


class ResponseStore:
    """The latest stored ``response`` bodies by id (oldest pushed out beyond ``capacity``)."""

    __slots__ = ("_bodies", "capacity")

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._bodies: OrderedDict[str, bytes] = OrderedDict()

    def keep(self, payload: object, body: bytes, response_id: str) -> None:
        """Store an answer unless the request said ``store: false``."""
        if isinstance(payload, dict) and payload.get("store") is False:
            return
        self._bodies[response_id] = body
        while len(self._bodies) > self.capacity:
            self._bodies.popitem(last=False)

    def get(self, response_id: str) -> bytes | None:
        """A stored answer, or None."""
        return self._bodies.get(response_id)

    def pop(self, response_id: str) -> bytes | None:
        """Delete a stored answer; None when there was none."""
        return self._bodies.pop(response_id, None)

    def __repr__(self) -> str:
        return f"ResponseStore(stored={len(self._bodies)}, capacity={self.capacity})"


def _json(status: int, body: bytes, request_id: str) -> web.Response:
    headers = {"Content-Type": "application/json", "x-request-id": request_id}
    return web.Response(status=status, body=body, headers=headers)


def register_catalogue_routes(
    app: web.Application,
    models: Callable[[], tuple[str, ...]],
    store: ResponseStore,
    authenticate: Authenticate,
) -> None:
    """Add ``GET /v1/models/{id}``, ``GET``/``DELETE /v1/responses/{id}`` to ``app``."""

    async def retrieve_model(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        denied = authenticate(request, request_id)
        if denied is not None:
            return denied
        name = request.match_info["model"]
        if name not in models():
            message = f"The model {name} does not exist or your team does not have access to it."
            return _json(404, error_body(NOT_FOUND, message), request_id)
        return _json(200, json.dumps(model_object(name)).encode(), request_id)

    async def stored_response(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        denied = authenticate(request, request_id)
        if denied is not None:
            return denied
        response_id = request.match_info["response_id"]
        if request.method == "DELETE":
            found = store.pop(response_id)
            if found is not None:
                deleted = {"id": response_id, "object": "response", "deleted": True}
                return _json(200, json.dumps(deleted).encode(), request_id)
        else:
            found = store.get(response_id)
            if found is not None:
                return _json(200, found, request_id)
        message = f"Response with id '{response_id}' not found."
        return _json(404, error_body(NOT_FOUND, message), request_id)

    app.router.add_get("/v1/models/{model}", retrieve_model)
    app.router.add_get("/v1/responses/{response_id}", stored_response)
    app.router.add_delete("/v1/responses/{response_id}", stored_response)
