"""Configuration and live statistics of the simulator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

HeaderMode = Literal["none", "openai", "ietf", "generic"]
"""Which rate-limit header family the simulator sends ("none" is what xAI does)."""

HEADER_MODES: tuple[str, ...] = get_args(HeaderMode)

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "500",
        "503",
        "grammar",
        "502_html",
        "capacity_429",
        "capacity_422",
        "billing",
        "bad_key",
        "reset",
        "hang",
        "malformed",
        "no_choices",
        "empty_body_500",
    }
)
"""Every fault the simulator can inject (see ``_faults.py`` for what each one sends)."""


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated xAI server behaves.

    Mutable on purpose: limits, latency and faults may be changed while the server runs; the
    server reads the fields on every request.
    """

    requests_per_second: float | None = 20.0
    tokens_per_minute: float | None = None
    burst_seconds: float = 1.0
    headers: HeaderMode = "none"
    api_key: str | None = field(default=None, repr=False)
    latency: float = 0.05
    latency_per_token: float = 0.0
    latency_jitter: float = 0.0
    completion_tokens: int = 16
    reasoning_tokens: int = 0
    faults: dict[str, float] = field(default_factory=dict)
    hang_seconds: float = 3600.0
    seed: int | None = 0
    model_names: tuple[str, ...] = ()
    neighbour_share: float = 0.0
    max_prompt_tokens: int = 131_072

    def validate(self) -> None:
        """Raise ``ValueError`` if a field holds a value the server cannot honour."""
        for name in ("requests_per_second", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number or None")
        if not self.burst_seconds > 0:
            raise ValueError("burst_seconds must be positive")
        if self.headers not in HEADER_MODES:
            raise ValueError(f"headers must be one of {HEADER_MODES}")
        if self.latency < 0 or self.latency_per_token < 0 or not 0 <= self.latency_jitter <= 1:
            raise ValueError("latencies must be >= 0 and latency_jitter within [0, 1]")
        if self.completion_tokens < 0 or self.reasoning_tokens < 0:
            raise ValueError("completion_tokens and reasoning_tokens must be >= 0")
        if not 0 <= self.neighbour_share < 1:
            raise ValueError("neighbour_share must be within [0, 1)")
        unknown = set(self.faults) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if any(not 0 <= p <= 1 for p in self.faults.values()):
            raise ValueError("fault probabilities must be within [0, 1]")
        if self.api_key == "":
            raise ValueError("api_key must be None or non-empty")


@dataclass(slots=True)
class SimulatorStats:
    """Live counters kept by the simulator; read them to check what a client did."""

    requests: int = 0
    accepted: int = 0
    rate_limited: int = 0
    rate_limited_requests: int = 0
    rate_limited_tokens: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    auth_failures: int = 0
    invalid_requests: int = 0
    tokens: int = 0
    accepted_times: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def max_accepted_in_window(self, window: float) -> int:
        """Most accepted requests whose arrival times fit in any half-open window of that length.

        The window slides over ``accepted_times`` (``time.monotonic()`` at admission), so this is
        the number a strict rate referee compares with ``capacity + rate * window``.
        """
        times = self.accepted_times
        best = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        """Zero the counters; requests still in flight stay counted as in flight."""
        self.requests = self.accepted = self.rate_limited = 0
        self.rate_limited_requests = self.rate_limited_tokens = 0
        self.auth_failures = self.invalid_requests = self.tokens = 0
        self.faults = {}
        self.accepted_times = []
        self.max_in_flight = self.in_flight
