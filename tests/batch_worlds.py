"""The simulator's Batch API book on a ``FakeClock``, behind the client's ``Rest`` interface.

A virtual-time test (or a benchmark) runs the batch road against the same ``BatchBook`` the
aiohttp simulator serves, without sockets: each call is routed here by method and path, and
``now`` is the fake clock's. ``calls`` counts the calls per kind, so a test can see polling.
"""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from grok_scheduler import FakeClock, TransportResponse
from grok_scheduler.simulator import SimulatorConfig
from grok_scheduler.simulator._batches import BatchBook, BatchConfig
from grok_scheduler.simulator._world import Reply, World


class VirtualBatchRest:
    """``Rest`` over a :class:`BatchBook` on ``clock`` (``rest.book`` is the referee)."""

    def __init__(
        self, clock: FakeClock, batch: BatchConfig, config: SimulatorConfig | None = None
    ) -> None:
        self.clock = clock
        self.book = BatchBook(batch)
        self._world = World(config or SimulatorConfig(), now=clock.now())
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"VirtualBatchRest(book={self.book!r})"

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, timeout: float = 60.0
    ) -> TransportResponse:
        reply = self._route(method, path, body or b"")
        return TransportResponse(reply.status, reply.body, {"content-type": reply.content_type})

    def _route(self, method: str, path: str, body: bytes) -> Reply:
        now = self.clock.now()
        split = urlsplit(path)
        parts = split.path.split("/")
        payload = json.loads(body) if body else {}
        if method == "POST" and split.path == "batches":
            self.calls["create"] += 1
            return self.book.create(payload, self._world, now)
        batch_id = parts[1]
        if method == "POST" and batch_id.endswith(":cancel"):
            self.calls["cancel"] += 1
            return self.book.cancel(batch_id.removesuffix(":cancel"), now)
        if method == "POST" and parts[-1] == "requests":
            self.calls["add"] += 1
            return self.book.add(batch_id, len(body), payload, self._world, now)
        if parts[-1] == "results":
            self.calls["results"] += 1
            query = parse_qs(split.query)
            token = query.get("pagination_token", [None])[0]
            limit = int(query.get("limit", ["0"])[0]) or None
            return self.book.results(batch_id, token, limit, now)
        self.calls["status"] += 1
        return self.book.status(batch_id, now)

    async def aclose(self) -> None:
        pass
