"""The clients compared in ``benchmarks/compare.py``, one module per peer."""

from __future__ import annotations

from ._common import JobSpec, Peer, Report, RunSettings
from .aiolimiter_tenacity import AiolimiterTenacity
from .bare_aiohttp import BareAiohttp
from .cookbook import Cookbook
from .grok import GrokScheduler
from .openai_semaphore import OpenAISemaphore

PEERS: dict[str, type[Peer]] = {
    "grok": GrokScheduler,
    "openai": OpenAISemaphore,
    "aiolimiter": AiolimiterTenacity,
    "cookbook": Cookbook,
}
"""Peers run on every workload, by command-line key."""

__all__ = [
    "PEERS",
    "AiolimiterTenacity",
    "BareAiohttp",
    "Cookbook",
    "GrokScheduler",
    "JobSpec",
    "OpenAISemaphore",
    "Peer",
    "Report",
    "RunSettings",
]
