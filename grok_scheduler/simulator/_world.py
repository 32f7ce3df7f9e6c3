"""The simulated world: every decision the xAI simulator makes, with time passed in.

A ``World`` holds the configuration, the per-model buckets, the fault and latency draws and
the referee's counters. It never reads a clock, sleeps or touches a socket: each step takes
``now`` and returns what to answer. The aiohttp ``Simulator`` (real time, real sockets) and the
``VirtualServer`` (virtual time, no sockets) both run the same steps in the same order::

    parse (400 / 404 unknown model) -> fault? -> admit (429: rate limit or 0/0) -> delay
    -> settle

Per model: each model has its own buckets (``SimulatorConfig.limits_for``), created on its
first request. Limit changes (``SimulatorConfig.limit_changes``) take effect at their time
measured from the world's creation: buckets refill at the old rate up to that moment, then the
new limits apply, whenever the next request happens to look.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from ._config import LimitChange, ModelLimits, SimulatorConfig, SimulatorStats
from ._faults import FaultInjector, canned_fault
from ._headers import rate_limit_headers
from ._latency import draw_delay
from ._limits import Rejection, ServerLimits
from ._protocol import (
    EXHAUSTED,
    InvalidRequest,
    ModelCall,
    error_body,
    parse_chat,
    parse_responses,
)
from ._refusals import plain_message, unavailable_message, xai_message
from ._shapes import check_roles

Endpoint = Literal["chat", "responses"]
RefusalKind = Literal["requests", "tokens", "unavailable"]
JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished answer: status, body, extra headers and, for a 429, what refused it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    refused: RefusalKind | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """An admitted call: its bill, its model's buckets, headers to send and how long it takes."""

    call: ModelCall
    limits: ServerLimits
    headers: dict[str, str]
    delay: float


class _ModelState:
    __slots__ = ("changes_applied", "limits")

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.changes_applied = 0


class World:
    """One simulated xAI team: per-model limits, faults, latency and the referee's counters."""

    __slots__ = ("_faults", "_latency_rng", "_models", "config", "started", "stats")

    def __init__(self, config: SimulatorConfig, *, now: float) -> None:
        config.validate()
        self.config = config
        self.stats = SimulatorStats()
        self.started = now
        seed = config.seed
        self._faults = FaultInjector(seed)
        # Seeded apart from the faults so that adding a fault does not shift the latencies.
        self._latency_rng = random.Random(None if seed is None else seed + 1)
        self._models: dict[str, _ModelState] = {}

    def __repr__(self) -> str:
        models = {name: state.limits for name, state in self._models.items()}
        return f"World(config={self.config!r}, models={models!r})"

    # --- control -----------------------------------------------------------------------

    def fail_next(self, kind: str, n: int = 1) -> None:
        """Force the next ``n`` model calls to fail with fault ``kind``."""
        self._faults.fail_next(kind, n)

    def limits(self, model: str, now: float) -> ServerLimits:
        """The buckets of ``model`` brought up to ``now`` (config edits and limit changes)."""
        state = self._models.get(model)
        if state is None:
            limits = self.effective_limits(model, now)
            c = self.config
            state = _ModelState(
                ServerLimits(
                    requests_per_second=limits.requests_per_second,
                    tokens_per_minute=limits.tokens_per_minute,
                    requests_per_minute=limits.requests_per_minute,
                    burst_seconds=c.burst_seconds,
                    neighbour_share=c.neighbour_share,
                    now=now,
                )
            )
            state.changes_applied = self._changes_due(now)
            self._models[model] = state
            return state.limits
        due = self._changes_due(now)
        while state.changes_applied < due:
            # Apply each change at its own moment so the old rate refills up to it.
            at = self.started + self._changes()[state.changes_applied].after
            state.changes_applied += 1
            self._reshape(state.limits, model, at, state.changes_applied)
        self._reshape(state.limits, model, now, due)
        return state.limits

    def resync(self, now: float) -> None:
        """Apply edited limits to every model's buckets at once (``Simulator.set_limits``)."""
        for model in self._models:
            self.limits(model, now)

    def effective_limits(self, model: str, now: float) -> ModelLimits:
        """The limits of ``model`` at ``now``: configured, times every change already due."""
        return self._scaled(model, self._changes_due(now))

    def _changes(self) -> list[LimitChange]:
        return sorted(self.config.limit_changes, key=lambda change: change.after)

    def _changes_due(self, now: float) -> int:
        return sum(1 for c in self.config.limit_changes if self.started + c.after <= now)

    def _scaled(self, model: str, applied: int) -> ModelLimits:
        factor = 1.0
        for change in self._changes()[:applied]:
            if change.model is None or change.model == model:
                factor *= change.factor
        return self.config.limits_for(model).scaled(factor)

    def _reshape(self, limits: ServerLimits, model: str, now: float, applied: int) -> None:
        want, c = self._scaled(model, applied), self.config
        if not limits.matches(
            want.requests_per_second,
            want.tokens_per_minute,
            c.burst_seconds,
            c.neighbour_share,
            want.requests_per_minute,
        ):
            limits.configure(
                requests_per_second=want.requests_per_second,
                tokens_per_minute=want.tokens_per_minute,
                requests_per_minute=want.requests_per_minute,
                burst_seconds=c.burst_seconds,
                neighbour_share=c.neighbour_share,
                now=now,
            )

    # --- the steps of one model call -------------------------------------------------------

    def parse(self, endpoint: Endpoint, payload: object) -> ModelCall | Reply:
        """Validate a request body and decide its bill, or the 4xx that refuses it."""
        c = self.config
        parse = parse_chat if endpoint == "chat" else parse_responses
        try:
            check_roles(endpoint, payload)
            return parse(
                payload,
                completion_tokens=c.completion_tokens,
                reasoning_tokens=c.reasoning_tokens,
                model_names=c.model_names,
                max_prompt_tokens=c.max_prompt_tokens,
            )
        except InvalidRequest as exc:
            self.stats.invalid_requests += 1
            return Reply(exc.status, error_body(exc.code, exc.message))

    def pick_fault(self) -> str | None:
        """The fault this call suffers (counted), or ``None`` to serve it."""
        kind = self._faults.pick(self.config.faults)
        if kind is not None:
            self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
        return kind

    def fault_reply(self, kind: str, presented_key: str) -> Reply:
        """The canned answer of a fault that needs no acting out (an unknown kind: a 500)."""
        canned = canned_fault(kind, presented_key) or canned_fault("500", "")
        assert canned is not None
        return Reply(canned.status, canned.body, {}, canned.content_type)

    def admit(self, model: str, reserved_tokens: int, now: float) -> Reply | ServerLimits:
        """Charge the model's buckets, or the 429 that refuses the call (charging nothing)."""
        c, stats = self.config, self.stats
        if not self.effective_limits(model, now).available:
            stats.unavailable += 1
            message = unavailable_message(
                team_id=c.team_id,
                model=model,
                dash=c.rate_limit_dash,
                preamble=c.rate_limit_preamble,
            )
            return Reply(429, error_body(EXHAUSTED, message), refused="unavailable")
        limits = self.limits(model, now)
        rejection = limits.try_admit(reserved_tokens, now)
        if rejection is not None:
            return self._rate_limited(model, limits, rejection)
        stats.accepted += 1
        stats.accepted_times.append(now)
        stats.accepted_by_model[model] = stats.accepted_by_model.get(model, 0) + 1
        return limits

    def grant(self, call: ModelCall, now: float) -> Grant | Reply:
        """Admit a parsed call and draw its latency, or the 429 that refuses it."""
        admitted = self.admit(call.model, call.reserved_tokens, now)
        if isinstance(admitted, Reply):
            return admitted
        headers = rate_limit_headers(self.config.headers, admitted, None) or {}
        return Grant(call, admitted, headers, self.delay(call))

    def admit_tokenize(self, model: str, now: float) -> dict[str, str] | Reply:
        """``/v1/tokenize-text`` costs one request of the model's limit and no tokens."""
        admitted = self.admit(model, 0, now)
        if isinstance(admitted, Reply):
            return admitted
        return rate_limit_headers(self.config.headers, admitted, None) or {}

    def delay(self, call: ModelCall) -> float:
        """Seconds the call takes, drawn from the configured latency distribution."""
        return draw_delay(self.config, call, self._latency_rng)

    def settle(self, grant: Grant, now: float) -> None:
        """The answer is done: refund the unused reservation and count the tokens."""
        call = grant.call
        grant.limits.settle(call.reserved_tokens, call.total_tokens, now)
        self.stats.tokens += call.total_tokens

    def _rate_limited(self, model: str, limits: ServerLimits, rejection: Rejection) -> Reply:
        c, stats = self.config, self.stats
        stats.rate_limited += 1
        if rejection.dimension == "requests":
            stats.rate_limited_requests += 1
        else:
            stats.rate_limited_tokens += 1
        if c.rate_limit_body == "xai":
            message = xai_message(
                rejection.exceeded,
                team_id=c.team_id,
                model=model,
                dash=c.rate_limit_dash,
                preamble=c.rate_limit_preamble,
            )
        else:
            message = plain_message(rejection)
        headers = rate_limit_headers(c.headers, limits, rejection) or {}
        return Reply(429, error_body(EXHAUSTED, message), headers, refused=rejection.dimension)
