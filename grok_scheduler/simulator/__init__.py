"""A local xAI-compatible API server for tests, the demo and the benchmarks.

It behaves like the real xAI API (flat error bodies, a wrong key is a 400, billing exhaustion
is a 429, no rate-limit headers by default, per-model limits, limit-stating 429 bodies on
request) and enforces its limits strictly, so a client cannot cheat: ``Simulator.stats`` is the
referee's score sheet. ``Simulator`` serves it over HTTP in real time; ``VirtualServer`` runs the
same world on an injected clock, without sockets, for virtual-time tests.
"""

from __future__ import annotations

from ._config import (
    FAULT_KINDS,
    HeaderMode,
    LatencyDist,
    LimitChange,
    ModelLimits,
    RateLimitBody,
    SimulatorConfig,
    SimulatorStats,
)
from ._server import UNCHANGED, Simulator
from ._virtual import VirtualResponse, VirtualServer

__all__ = [
    "FAULT_KINDS",
    "UNCHANGED",
    "HeaderMode",
    "LatencyDist",
    "LimitChange",
    "ModelLimits",
    "RateLimitBody",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "VirtualResponse",
    "VirtualServer",
]
