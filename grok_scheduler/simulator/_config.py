"""Configuration and live statistics of the simulator (the settings a world is built from)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

HeaderMode = Literal["none", "openai", "openai-60s", "openai-1s", "openai-day", "ietf", "generic"]
"""Which rate-limit header family the simulator sends ("none" is what xAI does).

* ``openai``: the original mode, kept as it was: ``limit`` per minute, but ``remaining`` and
  ``reset`` describe the one-second request bucket (the triple does not add up);
* ``openai-60s`` / ``openai-1s`` / ``openai-day``: ``x-ratelimit-*`` triples whose ``limit`` is
  counted over 60 s (OpenAI), 1 s (other OpenAI-compatible servers) or, for requests, a day
  (Groq-like; tokens stay per minute), with ``remaining`` and ``reset`` taken from the real
  bucket so that ``(limit - remaining) / reset`` is the refill rate the client really gets;
* ``ietf``: ``RateLimit-Policy`` / ``RateLimit``; ``generic``: ``X-RateLimit-*``.
"""

HEADER_MODES: tuple[str, ...] = get_args(HeaderMode)

RateLimitBody = Literal["plain", "xai"]
"""How a rate-limit 429 reads: ``plain`` (the simulator's original wording) or ``xai``, the
limit-stating text xAI sends (``... Requests per Second (actual/limit): 2/2.``)."""

RATE_LIMIT_BODIES: tuple[str, ...] = get_args(RateLimitBody)

LatencyDist = Literal["fixed", "uniform", "lognormal"]
"""How a request's base latency is drawn: exactly ``latency``; ``latency`` spread uniformly by
``latency_jitter``; or lognormal with median ``latency`` and shape ``latency_sigma``."""

LATENCY_DISTS: tuple[str, ...] = get_args(LatencyDist)

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
        # Inside a 200 stream (_stream_faults.py); a call that did not ask to stream is served.
        "stream_hang_first",
        "stream_hang_mid",
        "stream_reset_mid",
        "stream_error_first",
        "stream_error_mid",
        "stream_no_done",
    }
)
"""Every fault the simulator can inject (see ``_faults.py`` for what each one sends)."""


def _check_rate(name: str, value: float | None, *, zero_ok: bool) -> None:
    if value is None:
        return
    if zero_ok and value == 0:
        return
    if not (value > 0 and math.isfinite(value)):
        allowed = "zero, " if zero_ok else ""
        raise ValueError(f"{name} must be {allowed}a positive finite number or None")


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """One model's limits for the team, each its own bucket; ``None`` means unlimited.

    A zero anywhere means the model is not available to the team at all: every request gets
    xAI's ``Requests per Minute (actual/limit): 0/0`` 429, which no amount of waiting cures.
    """

    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    requests_per_minute: float | None = None

    @classmethod
    def unavailable(cls) -> ModelLimits:
        """Limits 0/0: the model exists but this team may not use it."""
        return cls(requests_per_second=0.0, tokens_per_minute=0.0, requests_per_minute=0.0)

    @property
    def available(self) -> bool:
        """False when a zero limit makes every request fail."""
        return 0 not in (self.requests_per_second, self.tokens_per_minute, self.requests_per_minute)

    def scaled(self, factor: float) -> ModelLimits:
        """The same limits multiplied by ``factor`` (a limit change mid-run)."""
        if factor == 1.0:
            return self

        def scale(value: float | None) -> float | None:
            return None if value is None else value * factor

        return ModelLimits(
            scale(self.requests_per_second),
            scale(self.tokens_per_minute),
            scale(self.requests_per_minute),
        )

    def validate(self) -> None:
        """Raise ``ValueError`` for a negative, infinite or NaN limit."""
        _check_rate("requests_per_second", self.requests_per_second, zero_ok=True)
        _check_rate("tokens_per_minute", self.tokens_per_minute, zero_ok=True)
        _check_rate("requests_per_minute", self.requests_per_minute, zero_ok=True)


@dataclass(frozen=True, slots=True)
class LimitChange:
    """From ``after`` seconds into the run on, multiply the limits by ``factor``.

    The run starts when the ``Simulator`` or ``VirtualServer`` is constructed. ``model=None``
    changes every model. Changes compound: two halvings leave a quarter.
    """

    after: float
    factor: float
    model: str | None = None


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated xAI server behaves.

    Mutable on purpose: limits, latency and faults may be changed while the server runs; the
    server reads the fields on every request. ``requests_per_second``, ``tokens_per_minute``
    and ``requests_per_minute`` are the limits of every model not named in ``model_limits``;
    each model has buckets of its own, as on xAI.
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
    requests_per_minute: float | None = None
    model_limits: dict[str, ModelLimits] = field(default_factory=dict)
    limit_changes: tuple[LimitChange, ...] = ()
    rate_limit_body: RateLimitBody = "plain"
    rate_limit_dash: str = "\u2014"
    rate_limit_preamble: bool = True
    team_id: str = "00000000-0000-0000-0000-000000000000"
    latency_dist: LatencyDist = "uniform"
    latency_sigma: float = 0.0
    latency_max: float = 3600.0
    stream_ttft: float | None = None
    """Seconds from a streamed call's admission to its first byte; None: a quarter of the
    call's latency, at most 0.5 s. The rest of the latency is spread between the chunks."""

    def limits_for(self, model: str) -> ModelLimits:
        """The configured limits of ``model`` (before any limit change)."""
        named = self.model_limits.get(model)
        if named is not None:
            return named
        return ModelLimits(
            self.requests_per_second, self.tokens_per_minute, self.requests_per_minute
        )

    def validate(self) -> None:
        """Raise ``ValueError`` if a field holds a value the server cannot honour."""
        for name in ("requests_per_second", "tokens_per_minute", "requests_per_minute"):
            _check_rate(name, getattr(self, name), zero_ok=False)
        for limits in self.model_limits.values():
            limits.validate()
        for change in self.limit_changes:
            if not (change.after >= 0 and change.factor > 0 and math.isfinite(change.factor)):
                raise ValueError("a limit change needs after >= 0 and a positive finite factor")
        if not self.burst_seconds > 0:
            raise ValueError("burst_seconds must be positive")
        if self.headers not in HEADER_MODES:
            raise ValueError(f"headers must be one of {HEADER_MODES}")
        if self.rate_limit_body not in RATE_LIMIT_BODIES:
            raise ValueError(f"rate_limit_body must be one of {RATE_LIMIT_BODIES}")
        if self.latency_dist not in LATENCY_DISTS:
            raise ValueError(f"latency_dist must be one of {LATENCY_DISTS}")
        if self.latency < 0 or self.latency_per_token < 0 or not 0 <= self.latency_jitter <= 1:
            raise ValueError("latencies must be >= 0 and latency_jitter within [0, 1]")
        if not (0 <= self.latency_sigma <= 5 and self.latency_max > 0):
            raise ValueError("latency_sigma must be within [0, 5] and latency_max positive")
        if self.stream_ttft is not None and not self.stream_ttft >= 0:
            raise ValueError("stream_ttft must be None or >= 0")
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
    unavailable: int = 0
    accepted_by_model: dict[str, int] = field(default_factory=dict)

    def max_accepted_in_window(self, window: float) -> int:
        """Most accepted requests whose arrival times fit in any half-open window of that length.

        The window slides over ``accepted_times`` (the world's clock at admission), so this is
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
        self.unavailable = 0
        self.faults = {}
        self.accepted_by_model = {}
        self.accepted_times = []
        self.max_in_flight = self.in_flight
