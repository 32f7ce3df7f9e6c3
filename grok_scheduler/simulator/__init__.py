"""A local xAI-compatible API server for tests, the demo and the benchmarks.

It behaves like the real xAI API (flat error bodies, a wrong key is a 400, billing exhaustion
is a 429, no rate-limit headers by default) and enforces its limits strictly, so a client
cannot cheat: ``Simulator.stats`` is the referee's score sheet.
"""

from __future__ import annotations

from ._config import FAULT_KINDS, HeaderMode, SimulatorConfig, SimulatorStats
from ._server import UNCHANGED, Simulator

__all__ = [
    "FAULT_KINDS",
    "UNCHANGED",
    "HeaderMode",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
]
