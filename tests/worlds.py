"""Worlds for virtual-time tests: the simulator's ``VirtualServer`` behind a ``MockTransport``.

A test builds a world from a ``SimulatorConfig`` (per-model limits, 429 bodies, headers,
latency, limit changes, a neighbour), runs a scheduler against it on a ``FakeClock``, and then
reads what happened from ``World.sent``: when each request was sent and answered, for which
model, with which status and, for a 429, which limit refused it. ``ideal_makespan`` says how
fast the same jobs could have gone at best, so a test can bound ``makespan / ideal`` and the
share of 429s across a range of worlds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from grok_scheduler import FakeClock, MockTransport, Scheduler, TransportResponse
from grok_scheduler.simulator import SimulatorConfig, SimulatorStats, VirtualServer

TEST_KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Sent:
    """One request as the world saw it (``status`` 0: no answer, e.g. a reset or a timeout)."""

    at: float
    done: float
    model: str | None
    status: int
    refused: str | None  # "requests", "tokens" or "unavailable" for a limit's 429


class World:
    """A ``VirtualServer`` on ``clock`` that records every request; pass it to MockTransport."""

    def __init__(self, config: SimulatorConfig, clock: FakeClock) -> None:
        self.clock = clock
        self.server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
        self.sent: list[Sent] = []

    @property
    def config(self) -> SimulatorConfig:
        """The world's (mutable) configuration."""
        return self.server.config

    @property
    def stats(self) -> SimulatorStats:
        """The referee's counters."""
        return self.server.stats

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        started = self.clock.now()
        model = body.get("model") if isinstance(body.get("model"), str) else None
        try:
            response = await self.server.respond(path, body)
        except BaseException:
            # Cancelled by the transport's timeout, or a simulated reset: sent, never answered.
            self.sent.append(Sent(started, self.clock.now(), model, 0, None))
            raise
        self.sent.append(
            Sent(started, self.clock.now(), response.model, response.status, response.refused)
        )
        return TransportResponse(response.status, response.body, response.headers)

    def transport(self) -> MockTransport:
        """A transport that sends to this world, with timeouts on the world's clock."""
        return MockTransport(self, clock=self.clock)

    @property
    def makespan(self) -> float:
        """From the first request sent to the last answer received."""
        if not self.sent:
            return 0.0
        return max(s.done for s in self.sent) - min(s.at for s in self.sent)

    @property
    def share_429(self) -> float:
        """The share of requests answered with a 429 (0 when nothing was sent)."""
        if not self.sent:
            return 0.0
        return sum(s.status == 429 for s in self.sent) / len(self.sent)

    def refused(self, kind: str) -> int:
        """How many requests the given limit refused (``requests``, ``tokens``, ...)."""
        return sum(s.refused == kind for s in self.sent)


def make_world_scheduler(clock: FakeClock, world: World, **options: Any) -> Scheduler:
    """A scheduler on virtual time talking to ``world``."""
    options.setdefault("max_concurrency", 32)
    options.setdefault("rng", random.Random(0))
    return Scheduler(api_key=TEST_KEY, clock=clock, transport=world.transport(), **options)


def ideal_makespan(
    config: SimulatorConfig,
    jobs: int,
    *,
    model: str = "grok-4",
    tokens_per_job: int = 0,
    latency: float | None = None,
) -> float:
    """The least time ``jobs`` calls to ``model`` can take in this world, counting its burst.

    Each bucket lets its capacity go at once (the server's initial burst), then refills at its
    rate less the neighbour's share; the last call starts when the slowest bucket has paid for
    all of them and takes ``latency`` (by default the configured base latency plus the output
    tokens' time, the median for a lognormal world). ``tokens_per_job`` is each call's final
    token bill; limit changes are not modelled (``inf`` for a model the team cannot use).
    """
    if jobs <= 0:
        return 0.0
    limits = config.limits_for(model)
    if not limits.available:
        return math.inf
    keep = 1.0 - config.neighbour_share
    starts = [0.0]
    rps, rpm, tpm = limits.requests_per_second, limits.requests_per_minute, limits.tokens_per_minute
    if rps is not None:
        starts.append((jobs - max(1.0, rps * config.burst_seconds)) / (rps * keep))
    if rpm is not None:
        starts.append((jobs - max(1.0, rpm)) / (rpm / 60.0 * keep))
    if tpm is not None and tokens_per_job > 0:
        if tokens_per_job > tpm:
            return math.inf
        starts.append((jobs * tokens_per_job - tpm) / (tpm / 60.0 * keep))
    if latency is None:
        output = config.completion_tokens + config.reasoning_tokens
        latency = config.latency + config.latency_per_token * output
    return max(starts) + latency
