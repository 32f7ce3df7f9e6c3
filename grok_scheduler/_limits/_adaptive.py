"""Finding and holding each model's limits from what the server demonstrates, at any latency.

Evidence, strongest first: a limit the server states (xAI's 429 body, or a header triple whose
window was read from the triple) becomes the ceiling and the rate; what the server accepted
while it was refusing (``_acceptance.py``, counted by send time) is its refill rate, the limit
less any neighbour's share; a configured limit is a ceiling never exceeded.

* **Episode**: from the send time of the first refused call until ``quiet_period`` (at least
  twice the rejection horizon) without a 429.
* **Cut**: every ``max(0.5 s, horizon)`` of an episode, if the server was saturated (5% or more
  of the measured sends refused), the rate becomes ``0.95 x`` what it accepted, at most halving
  per step. Before a measurement exists, a configured or learned rate (never a stated one) is
  cut by 0.85, then ``decrease``; every 429 also pauses the model's dispatch briefly.
* **First 429s** (``_first_429.py``): the rate the first refusal implies, before any measure.
* **Grow** (``_growth.py``), driven by time (``tick``), after the quiet period and while the
  gate waited for this model's credit; never above the ceiling, back to the target a refused
  climb may lower (``_target.py``). Once a probe crossed a request limit, the rate holds ~50
  calls between probes and a refused probe returns under the limit instead of being cut
  (``_probe.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .._observe._events import events as _log
from ._acceptance import AcceptanceLog, Dimension, SendRecord
from ._base import FleetLog, Limiter, MinuteLimited, RateLimitHeaders
from ._episode import DimensionState, Meter, pause_after_429
from ._first_429 import FirstEstimates, estimate_pending
from ._growth import grown_rate
from ._probe import may_return, refusal_of_probe, return_to_held
from ._target import episode_target

__all__ = ["AdaptivePolicy", "RateController"]

_USAGE_SPAN = 10.0
_CHANGE_WORTH_APPLYING = 0.01
_EARLY_CUT = 0.85
_DEEPEST_STEP = 0.5
_RETURN_REFUSED = 0.9  # a 0.7 cut cost a third of a 0.5 rps limit for 15 s ...
_FEW_CALLS = 5.0  # ... where a measure window held fewer calls than this (a 20 rps halving: 0.7)
_EPISODE_CALLS = 3.0
_LIMITED_RECENTLY = 2.0
_TICK = 0.05


@dataclass(frozen=True, slots=True)
class AdaptivePolicy:
    """Constants of the rate discovery (see the module docstring); ``enabled=False`` turns it off.

    ``decrease`` is the cut of a known rate while an episode is older than ``cut_cooldown`` and
    nothing could be measured yet (younger episodes cut by 0.85).
    """

    enabled: bool = True
    decrease: float = 0.7
    cut_cooldown: float = 1.0
    quiet_period: float = 2.0
    recovery_seconds: float = 4.0
    probe_fraction: float = 0.01
    measure_window: float = 2.0
    usage_cap: float = 2.0
    max_requests_per_second: float | None = None
    max_tokens_per_minute: float | None = None
    min_requests_per_second: float = 0.05
    min_tokens_per_minute: float = 100.0


class RateController:
    """Adjusts one model's limiter from 429s, stated limits and what the server accepted."""

    __slots__ = (
        "_first",
        "_fleet",
        "_last_limited",
        "_last_refused",
        "_last_tick",
        "_limiter",
        "_log",
        "_meter",
        "_on_change",
        "_policy",
        "_requests",
        "_shared",
        "_tokens",
        "last_reason",
    )

    def __init__(
        self,
        policy: AdaptivePolicy,
        limiter: Limiter,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        now: float,
        fleet: FleetLog | None = None,
        shared: bool = False,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._policy = policy
        self._limiter = limiter
        # Processes sharing a limit measure what the whole fleet got accepted; without a fleet
        # log, what this process alone got accepted says nothing about the limit.
        self._fleet = fleet
        self._shared = shared or fleet is not None
        self._requests = DimensionState(
            requests_per_second,
            requests_per_second or policy.max_requests_per_second,
            policy.min_requests_per_second,
        )
        self._tokens = DimensionState(
            tokens_per_minute,
            tokens_per_minute or policy.max_tokens_per_minute,
            policy.min_tokens_per_minute,
        )
        self._log = AcceptanceLog()
        self._meter = Meter(self._log, fleet, shared=self._shared)
        self._first = FirstEstimates(self._meter, limiter, now)
        self._last_limited = -math.inf
        self._last_refused = -math.inf
        self._last_tick = now
        self._on_change = on_change
        self.last_reason = "configured"

    # -- observations -----------------------------------------------------------------------
    def on_sent(self, tokens: int, now: float) -> SendRecord:
        """A call leaves now with ``tokens`` reserved; returns the record to book its fate on."""
        if self._fleet is not None:
            self._fleet.record_sent(now)
        return self._log.sent(tokens, now)

    def on_answered(self, record: SendRecord, reserved: int, used: int) -> None:
        """A call sent in ``record`` was answered (not refused): book its real token count."""
        self._log.answered(record, reserved, used)

    def on_opened(self, now: float) -> None:
        """The pool opens now (first contact is over): the server's bucket was full when its
        first call left, and that call was taken from it too."""
        self._first.open(now, self._log.first_sent())

    def on_limited(self, now: float) -> None:
        """The gate had to wait for this model's credit: the limiter is the bottleneck now."""
        self._last_limited = now

    def on_rate_limited(
        self,
        dimension: Dimension | None,
        now: float,
        *,
        record: SendRecord | None = None,
        reserved: int = 0,
    ) -> float:
        """A 429 came back for a call sent in ``record``; returns this model's pause."""
        self._last_refused = max(self._last_refused, now)
        dimension = dimension or self._blame(now)
        state = self._state(dimension)
        sent_at = now
        if record is not None:
            sent_at = record.sent_at
            self._log.rejected(record, dimension, reserved, now)
            if self._fleet is not None:
                self._fleet.record_rejected(sent_at, dimension)
        if not self._policy.enabled:
            return self._pause(dimension)
        if not state.in_episode(now, self._quiet(state)):
            target = episode_target(self._meter, dimension, state, sent_at)
            returning = may_return(dimension, state)
            state.episode_start = sent_at
            state.measured_in_episode = False
            state.episode_rate = target
            state.blind_cuts = 0
            state.best_measured = 0.0
            state.cut_at = target
            state.probe_returned_at = -math.inf
            back = return_to_held(self._meter, state, sent_at, now) if returning else None
            if back is not None:
                self._set(dimension, back, now, "429 on requests: back under the limit found")
        state.episode_start = min(state.episode_start, sent_at)
        state.last_refused_sent = max(state.last_refused_sent, sent_at)
        if record is not None:
            state.last_tracked_refusal = max(state.last_tracked_refusal, sent_at)
        state.last_429 = now
        self._step(dimension, now)
        pause = self._pause(dimension)
        if estimate_pending(dimension, state):
            # Hold the pool until the first estimate can be made: the calls sent meanwhile at
            # the configured rate would only meet the empty bucket.
            pause = max(pause, 1.5 * self._meter.lag())
        return pause

    def on_stated(
        self,
        *,
        now: float,
        reason: str,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        requests_per_minute: float | None = None,
    ) -> None:
        """The server stated a limit (a 429 body, or headers): the ceiling and the rate to run at.

        A configured limit below it still wins (the user may want less than the server
        allows), and a neighbour's share measured since keeps the rate below the statement.
        """
        pairs: tuple[tuple[Dimension, float | None], ...] = (
            ("requests", requests_per_second),
            ("tokens", tokens_per_minute),
        )
        for dimension, limit in pairs:
            if limit is None or not 0.0 < limit < math.inf:
                continue
            state = self._state(dimension)
            ceiling = limit if state.configured is None else min(limit, state.configured)
            if state.stated and state.ceiling == ceiling:
                continue
            state.stated = True
            # xAI's 429 body states the limit exactly; a header's window is a reading.
            state.exact = state.exact or reason == "429 body"
            state.ceiling = ceiling
            rate = ceiling
            if state.rate is not None and state.measured_in_episode:
                rate = min(state.rate, ceiling)
            state.cut_at = None
            self._set(dimension, rate, now, reason)
        if (
            requests_per_minute is not None
            and 0.0 < requests_per_minute < math.inf
            and isinstance(self._limiter, MinuteLimited)
        ):
            self._limiter.set_requests_per_minute(requests_per_minute, now)

    def tick(self, now: float) -> None:
        """Time passed: measure a running episode, or grow after a quiet one."""
        if not self._policy.enabled:
            return
        elapsed = min(now - self._last_tick, 1.0)
        if elapsed < _TICK:
            return
        self._last_tick = now
        dimensions: tuple[Dimension, Dimension] = ("requests", "tokens")
        for dimension in dimensions:
            state = self._state(dimension)
            if state.in_episode(now, self._quiet(state)):
                self._step(dimension, now)
            elif now - self._last_limited <= _LIMITED_RECENTLY:
                self._grow(dimension, state, elapsed, now)

    def accepted(self, dimension: Dimension, within: float, now: float) -> float:
        """Requests (or tokens) the server took from this process in the last ``within`` s."""
        counts = self._log.window(now - within, now + 1.0)
        return float(counts.accepted) if dimension == "requests" else max(0.0, counts.tokens)

    # -- decisions --------------------------------------------------------------------------
    def _state(self, dimension: Dimension) -> DimensionState:
        return self._requests if dimension == "requests" else self._tokens

    def _quiet(self, state: DimensionState | None = None) -> float:
        # A request episode lasts a few calls at least: at 0.5 rps each refusal began a new one,
        # met only the gentle first cut, and growth undid it: 50% 429s for good.
        rate = state.rate if state is self._requests and state is not None else None
        calls = min(_EPISODE_CALLS / rate, 8.0) if rate else 0.0
        return max(self._policy.quiet_period, 2.0 * self._log.horizon(), calls)

    def _step(self, dimension: Dimension, now: float) -> None:
        """During an episode, at most once per step: cut to what the server accepted."""
        state = self._state(dimension)
        if self._first.cut_configured(dimension, state, now, self._set):
            return
        if now - state.last_step < max(0.5, self._log.horizon()):
            if state.blind_cuts > 0 and state.last_tracked_refusal > state.last_step:
                # A call sent after the last blind cut was refused: it was not enough, and
                # waiting out the step would only collect more 429s at the same rate.
                self._blind_cut(dimension, state, now)
            return
        if refusal_of_probe(self._meter, state, self._pause(dimension)):
            return  # the rate it returned to held before: no cut
        measured = self._meter.episode(dimension, state, now, self._policy.measure_window)
        current = state.rate
        if measured is not None:
            rate = measured.rate
            if not measured.saturated:
                return  # the server kept up with us: no evidence of a lower limit
            state.last_step = now
            state.measured_in_episode = True
            if measured.telling:
                # Recovery climbs back to what the server showed it accepts, not to the rate
                # that overran it. A window where next to nothing was taken (an outage, not a
                # limit) says only "slower": recovery then returns to where the episode began.
                state.best_measured = max(state.best_measured, rate)
                state.learned = rate
                state.cut_at = min(state.episode_rate or math.inf, state.best_measured)
            new_rate = 0.95 * rate
            if current is not None:
                if new_rate >= current:
                    return
                # One noisy window must not collapse the rate: at most halve per step, unless
                # the window was solid (a first guess from a long burst can be far too high).
                if not measured.solid:
                    new_rate = max(new_rate, _DEEPEST_STEP * current)
            self._set(dimension, max(state.floor, new_rate), now, f"429 on {dimension}: measured")
            return
        if current is None or (state.stated and not state.exact and state.blind_cuts == 0):
            # Nothing known, or a header's reading the server is refusing: until a measurement
            # exists, what it took in its last burst, if that is lower.
            self._first.run_provisional(dimension, state, now, self._set)
            return
        self._blind_cut(dimension, state, now)

    def _blind_cut(self, dimension: Dimension, state: DimensionState, now: float) -> None:
        """A known rate met 429s that cannot be measured yet: cut it, at most twice."""
        current = state.rate
        if current is None or state.measured_in_episode or state.stated or state.blind_cuts >= 2:
            # A stated limit only a measurement may undercut (a neighbour's share), and blind
            # cuts stop at two: below the limit they would only spoil the measurement. The
            # pause holds the pool until one exists.
            return
        if state.blind_cuts > 0 and state.last_refused_sent <= state.last_step:
            # No call sent since the last cut was refused: nothing says it was not enough.
            return
        age = now - state.episode_start
        # The first cut is gentle (jitter; a found limit's return a little too high, when its
        # measure takes long), the second (a call sent since refused too) is ``decrease``.
        slow = state.settled and current * self._policy.measure_window < _FEW_CALLS
        factor = _RETURN_REFUSED if slow else _EARLY_CUT
        if state.blind_cuts > 0 or (age >= self._policy.cut_cooldown and not slow):
            factor = self._policy.decrease
        state.blind_cuts += 1
        state.last_step = now
        new_rate = current * factor
        if state.learned is not None:
            # Probing overran a limit measured before: back below it at once.
            new_rate = max(min(new_rate, 0.97 * state.learned), _DEEPEST_STEP * current)
        self._set(dimension, max(state.floor, new_rate), now, f"429 on {dimension}")
        if dimension == "requests":
            # The server's bucket just ran dry: credit saved at the old rate must not follow.
            self._limiter.observe_headers(RateLimitHeaders(requests_remaining=0.0), now)

    def _grow(
        self, dimension: Dimension, state: DimensionState, elapsed: float, now: float
    ) -> None:
        if self._shared:
            # Another process may have cut the shared rate: grow from what every process sees.
            # Unchanged since this controller applied it, growth too small to apply yet is kept.
            shared = self._limiter_rate(dimension)
            if shared is not None and shared != state.applied:
                state.rate = state.applied = shared
        rate = state.rate
        used = self._meter.sent_rate(dimension, _USAGE_SPAN, now)
        quiet_for = now - state.last_429 - self._quiet(state)
        calls = self._meter.calls_per_second(dimension, rate, now)
        grown = grown_rate(
            state, self._policy, elapsed=elapsed, quiet_for=quiet_for, used=used, now=now,
            calls_per_second=calls,
        )  # fmt: skip
        if grown is None or rate is None:
            return
        if state.ceiling is not None:
            grown = min(grown, state.ceiling)
        if grown <= rate:
            return
        state.rate = grown
        applied = state.applied
        if (
            applied is None
            or grown > applied * (1.0 + _CHANGE_WORTH_APPLYING)
            or grown == state.ceiling
        ):
            self._set(dimension, grown, now, "probing up", recovering=True)

    def _limiter_rate(self, dimension: Dimension) -> float | None:
        if dimension == "requests":
            return self._limiter.requests_per_second
        return self._limiter.tokens_per_minute

    def _blame(self, now: float) -> Dimension:
        tpm = self._tokens.rate
        if tpm is not None and self._log.sent_rate("tokens", _USAGE_SPAN, now) >= 0.8 * tpm:
            return "tokens"
        return "requests"

    def _pause(self, dimension: Dimension) -> float:
        return pause_after_429(dimension, self._state(dimension).rate)

    def _set(
        self,
        dimension: Dimension,
        rate: float,
        now: float,
        reason: str,
        *,
        recovering: bool = False,
    ) -> None:
        state = self._state(dimension)
        if state.ceiling is not None:
            rate = min(rate, state.ceiling)
        state.rate = rate
        state.applied = rate
        if not recovering:
            state.recover_from = rate
            state.probe_from = None
        self.last_reason = reason
        self._limiter.set_limits(
            requests_per_second=self._requests.rate,
            tokens_per_minute=self._tokens.rate,
            now=now,
            reason=reason,
        )
        _log.info(
            "grok_scheduler.limits_updated",
            requests_per_second=_round(self._requests.rate),
            tokens_per_minute=_round(self._tokens.rate),
            reason=reason,
        )
        if self._on_change is not None:
            self._on_change(reason)

    # -- what it holds ----------------------------------------------------------------------
    @property
    def last_rate_limited(self) -> float:
        """When the latest 429 of this model came back (-inf: none yet)."""
        return self._last_refused

    @property
    def tokens_ceiling(self) -> float | None:
        """The most tokens per minute this controller will ever allow (None: no ceiling)."""
        return self._tokens.ceiling

    @property
    def requests_per_second(self) -> float | None:
        """The current requests-per-second rate (None: unlimited)."""
        return self._requests.rate

    @property
    def tokens_per_minute(self) -> float | None:
        """The current tokens-per-minute rate (None: unlimited)."""
        return self._tokens.rate

    def __repr__(self) -> str:
        return (
            f"RateController(requests_per_second={_round(self._requests.rate)}, "
            f"tokens_per_minute={_round(self._tokens.rate)}, last_reason={self.last_reason!r})"
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
