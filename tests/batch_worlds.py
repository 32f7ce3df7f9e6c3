"""The simulator's Batch API book on a ``FakeClock``, behind the client's ``Rest`` interface.

A virtual-time test (or a benchmark) runs the batch road against the same ``BatchBook`` the
aiohttp simulator serves, without sockets: each call is routed here by method and path, and
``now`` is the fake clock's. ``calls`` counts the calls per kind, so a test can see polling.
:func:`run_auto` runs a whole ``via="auto"`` run of both roads in such a world.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from worlds import World, make_world_scheduler

from grok_scheduler import FakeClock, Priority, TransportResponse
from grok_scheduler._batch._client import BatchClient
from grok_scheduler._batch._journal import Journal
from grok_scheduler._batch._road import BatchRoad
from grok_scheduler._batch._roads import Line, RoadOutcome, Roads
from grok_scheduler.simulator import SimulatorConfig
from grok_scheduler.simulator._batches import BatchBook, BatchConfig
from grok_scheduler.simulator._world import Reply
from grok_scheduler.simulator._world import World as SimulatedWorld


class VirtualBatchRest:
    """``Rest`` over a :class:`BatchBook` on ``clock`` (``rest.book`` is the referee)."""

    def __init__(
        self, clock: FakeClock, batch: BatchConfig, config: SimulatorConfig | None = None
    ) -> None:
        self.clock = clock
        self.book = BatchBook(batch)
        self._world = SimulatedWorld(config or SimulatorConfig(), now=clock.now())
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


@dataclass(slots=True)
class AutoRun:
    """What one ``via="auto"`` run in virtual time did."""

    outcomes: list[RoadOutcome]
    roads: Roads
    world: World
    rest: VirtualBatchRest
    took: float
    """Seconds from the start to the last line answered."""
    answered_at: list[float]
    """Seconds from the start to each outcome's answer, in the order of ``outcomes``."""

    @property
    def by_road(self) -> dict[str, int]:
        counts = {"online": 0, "batch": 0}
        for outcome in self.outcomes:
            counts[outcome.via] += 1
        return counts


def make_lines(
    n: int, *, priority: int = Priority.NORMAL, prefix: str = "q", model: str = "grok-4"
) -> list[Line]:
    """``n`` chat lines for ``model`` with ids ``prefix0``, ``prefix1``, ..."""
    return [
        Line(
            f"{prefix}{i}",
            priority,
            f"question {i}",
            {"model": model},
            {"model": model, "messages": [{"role": "user", "content": f"question {i}"}]},
            metadata=i,
        )
        for i in range(n)
    ]


async def run_auto(
    lines: list[Line],
    *,
    config: SimulatorConfig,
    deadline_in: float,
    batch: BatchConfig,
    batch_delay: float | None = None,
    poll_min: float = 1.0,
    poll_max: float = 8.0,
) -> AutoRun:
    """Run ``lines`` on both roads against ``config``'s world and ``batch``'s Batch API.

    ``batch_delay`` is what the user tells the planner to expect of the batch road until it
    has seen it answer (None: the library's default).
    """
    clock = FakeClock()
    world = World(config, clock)
    rest = VirtualBatchRest(clock, batch, config)
    road = BatchRoad(
        BatchClient(rest, clock=clock, rng=random.Random(0)),
        Journal(None),
        clock=clock,
        poll_min=poll_min,
        poll_max=poll_max,
    )
    outcomes: list[RoadOutcome] = []
    start = clock.now()
    extra = {} if batch_delay is None else {"batch_delay": batch_delay}
    async with make_world_scheduler(clock, world, max_concurrency=None) as scheduler:
        roads = Roads(
            scheduler, road, clock=clock, via="auto", deadline=start + deadline_in, **extra
        )
        roads.assign(lines)
        finished_at: list[float] = []

        def emit(outcome: RoadOutcome) -> None:
            outcomes.append(outcome)
            finished_at.append(clock.now())

        await clock.run_until_done(asyncio.ensure_future(roads.run(emit)), limit=10**7)
    took = (max(finished_at) if finished_at else start) - start
    return AutoRun(outcomes, roads, world, rest, took, [t - start for t in finished_at])
