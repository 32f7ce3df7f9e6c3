"""Finding and holding the real limit when the server does not say it (xAI sends no headers).

The controller runs AIMD with a measured cut, per dimension (requests/s and tokens/min):

* **Cut** on a 429, once per congestion event (later 429s within about two call latencies, at
  most ``cut_cooldown``, are the same event: requests already in flight). The new rate is
  ``0.95 x the rate the server actually accepted`` over the last ``measure_window`` seconds, so
  one cut lands near the real limit instead of halving blindly again and again; with no such
  measurement (a limiter shared with other processes) it is ``decrease x rate``.
* **Recover** after ``quiet_period`` seconds without a 429, but only while the limiter is the
  bottleneck (raising a rate nobody uses would drift it upward unchecked): climb back linearly to
  the rate where the last 429 happened within ``recovery_seconds``...
* **Probe** beyond it slowly, ``probe_fraction`` of the rate per second, never above the ceiling:
  the configured limit, a limit the server's headers state, or ``max_*`` when nothing is given.

With nothing configured, requests start unlimited (the concurrency bound holds them) and the first
429 sets the rate from the measured acceptance. A 429 that does not say which limit it hit is
blamed on the dimension that was closer to its limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._observe._events import events as _log
from ._base import Limiter, RateLimitHeaders

__all__ = ["AdaptivePolicy", "RateController"]

Dimension = Literal["requests", "tokens"]
_ADJUST_EVERY = 0.25
_CHANGE_WORTH_APPLYING = 0.01
# Below this age an episode's acceptance is too few samples to measure a rate from.
_MIN_EPISODE = 0.5
_EARLY_CUT = 0.85
_PROBE_DOUBLING = 4.0
_SLOT = 0.02


@dataclass(frozen=True, slots=True)
class AdaptivePolicy:
    """Constants of the rate discovery (module docstring); ``enabled=False`` turns it off."""

    enabled: bool = True
    decrease: float = 0.7
    cut_cooldown: float = 1.0
    quiet_period: float = 3.0
    recovery_seconds: float = 8.0
    probe_fraction: float = 0.03
    measure_window: float = 2.0
    max_requests_per_second: float | None = None
    max_tokens_per_minute: float | None = None
    min_requests_per_second: float = 0.05
    min_tokens_per_minute: float = 100.0


class _Dimension:
    """The adaptive state of one limit."""

    __slots__ = (
        "applied",
        "ceiling",
        "cut_at",
        "episode_start",
        "floor",
        "last_429",
        "last_cut",
        "rate",
        "recover_from",
        "stated",
    )

    def __init__(self, rate: float | None, ceiling: float | None, floor: float) -> None:
        self.rate = rate  # None: unlimited (nothing known yet)
        self.applied = rate  # what the limiter was last given
        self.ceiling = ceiling
        self.floor = floor
        self.last_cut = -math.inf
        self.last_429 = -math.inf
        self.episode_start = -math.inf  # the first 429 of the current congestion episode
        self.cut_at: float | None = None  # the rate at which the last 429 came
        self.recover_from: float | None = None
        self.stated = False  # the server's headers gave this limit: no guessing needed


class RateController:
    """Adjusts a limiter's rates from 429s, successes and headers."""

    __slots__ = (
        "_accepted",
        "_last_adjust",
        "_last_limited",
        "_latency",
        "_limiter",
        "_measure",
        "_on_change",
        "_policy",
        "_requests",
        "_started",
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
        measure_acceptance: bool = True,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._policy = policy
        self._started = now
        self._latency = 0.0
        self._measure = measure_acceptance
        self._limiter = limiter
        self._requests = _Dimension(
            requests_per_second,
            requests_per_second or policy.max_requests_per_second,
            policy.min_requests_per_second,
        )
        self._tokens = _Dimension(
            tokens_per_minute,
            tokens_per_minute or policy.max_tokens_per_minute,
            policy.min_tokens_per_minute,
        )
        # (completion time, total tokens) of recent successes, for the measured cut.
        self._accepted: deque[list[float]] = deque()  # [sent at, calls, tokens]
        self._last_adjust = -math.inf
        self._last_limited = -math.inf
        self._on_change = on_change
        self.last_reason = "configured"

    # -- observations -----------------------------------------------------------------------
    def on_limited(self, now: float) -> None:
        """The gate had to wait for credit: the limiter is the bottleneck right now."""
        self._last_limited = now

    def on_success(self, tokens: int, now: float, call_seconds: float = 0.0) -> None:
        """A call succeeded; maybe raise the rates."""
        # Calls in flight when a 429 comes back belong to the same congestion event: the
        # cooldown between cuts follows how long a call takes.
        self._latency += 0.1 * (call_seconds - self._latency)
        accepted = self._accepted
        # Keyed by when the call was sent: that is when the server counted it. Calls sent within
        # _SLOT seconds share one entry, so memory stays flat at thousands of calls a second.
        sent = now - call_seconds
        if accepted and abs(sent - accepted[-1][0]) < _SLOT:
            slot = accepted[-1]
            slot[1] += 1
            slot[2] += tokens
        else:
            accepted.append([sent, 1, tokens])
        horizon = now - max(self._policy.measure_window, 60.0)
        while accepted and accepted[0][0] < horizon:
            accepted.popleft()
        if self._policy.enabled and now - self._last_adjust >= _ADJUST_EVERY:
            elapsed = min(now - self._last_adjust, 1.0)
            self._last_adjust = now
            if now - self._last_limited <= 1.0:
                self._grow(elapsed, now)

    def on_rate_limited(self, dimension: Dimension | None, now: float) -> float:
        """A 429 came back; cut the guilty dimension. Returns the pool pause to apply."""
        if not self._policy.enabled:
            return 0.0
        dimension = dimension or self._blame(now)
        state = self._requests if dimension == "requests" else self._tokens
        if now - state.last_429 > self._policy.quiet_period:
            state.episode_start = now
        state.last_429 = now
        cooldown = min(self._policy.cut_cooldown, max(0.2, 2.0 * self._latency))
        if state.stated or now - state.last_cut < cooldown:
            # A stated limit is exact: the 429 came from a burst or a neighbour, which the
            # pause and the remaining/reset synchronisation already handle.
            return self._pause(dimension)
        # A shared limiter's rate may have been changed by another process: start from it.
        shared = (
            self._limiter.requests_per_second
            if dimension == "requests"
            else (self._limiter.tokens_per_minute)
        )
        if shared is not None:
            state.rate = shared
        # Once 429s have started, the server's bucket is empty: what it accepted since then is
        # exactly its refill rate, the limit we are looking for (before that, its initial burst
        # would inflate any measurement). What this process saw accepted says nothing about
        # the key's limit when other processes share it: the measured cut is local only.
        episode = now - state.episode_start
        measured = None
        if self._measure and episode >= _MIN_EPISODE:
            # A long episode measures its recent part only: the limit may have moved within it.
            since = max(state.episode_start, now - self._policy.measure_window)
            measured = self._measured(dimension, now, since=since)
        if state.rate is None and measured is None:
            # Nothing known and nothing measured yet: guessing from the server's first burst
            # is noise. Pause, and cut once the episode has lasted long enough to measure.
            return self._pause(dimension)
        current = state.rate if state.rate is not None else measured
        if current is None or current <= 0:
            return self._pause(dimension)
        if measured is not None and measured > 0:
            new_rate = min(current, measured) * 0.95
            state.cut_at = min(current, measured)
        else:
            # No measurement yet: back off multiplicatively (mildly while the episode is young).
            factor = self._policy.decrease if episode >= _MIN_EPISODE else _EARLY_CUT
            new_rate = current * factor
            state.cut_at = current
        new_rate = max(state.floor, new_rate)
        state.recover_from = new_rate
        state.last_cut = now
        self._set(dimension, new_rate, now, f"429 on {dimension}")
        return self._pause(dimension)

    def on_headers(self, headers: RateLimitHeaders, now: float) -> None:
        """A limit the server states becomes the ceiling (headers win over inference)."""
        pairs: tuple[tuple[Dimension, float | None], ...] = (
            ("requests", headers.requests_per_second),
            ("tokens", headers.tokens_per_minute),
        )
        for dimension, limit in pairs:
            state = self._requests if dimension == "requests" else self._tokens
            if limit is None or not 0.0 < limit < math.inf or state.ceiling == limit:
                continue
            state.ceiling = limit
            state.stated = True
            # Until a 429 taught us otherwise, the stated limit is the rate to run at.
            rate = limit if state.rate is None or state.cut_at is None else state.rate
            self._set(dimension, min(rate, limit), now, "headers")

    # -- decisions --------------------------------------------------------------------------
    def _blame(self, now: float) -> Dimension:
        tpm = self._tokens.rate
        if tpm is not None:
            used = self._measured("tokens", now, window=60.0)
            if used is not None and used >= 0.8 * tpm:
                return "tokens"
        return "requests"

    def _measured(
        self,
        dimension: Dimension,
        now: float,
        *,
        window: float | None = None,
        since: float | None = None,
    ) -> float | None:
        """What the server accepted lately: requests per second or tokens per minute."""
        if since is None:
            # Early in a run there is less history than the window: do not dilute the rate.
            span = max(0.5, min(window or self._policy.measure_window, now - self._started))
            since = now - span
            recent = [slot for slot in self._accepted if slot[0] >= since]
        else:
            # Calls sent in the last moments have not answered yet: measure up to the latest
            # send that has, or the count would be diluted.
            recent = [slot for slot in self._accepted if slot[0] >= since]
            span = max((slot[0] for slot in recent), default=since) - since
            if span < _MIN_EPISODE / 2:
                return None
        if not recent:
            return None
        if dimension == "requests":
            return sum(slot[1] for slot in recent) / span
        return sum(slot[2] for slot in recent) / span * 60.0

    def _pause(self, dimension: Dimension) -> float:
        state = self._requests if dimension == "requests" else self._tokens
        if state.rate is None:
            return 0.25
        if dimension == "requests":
            return min(1.0, max(0.05, 1.0 / state.rate))
        return 1.0

    def _grow(self, elapsed: float, now: float) -> None:
        pairs: tuple[tuple[Dimension, _Dimension], ...] = (
            ("requests", self._requests),
            ("tokens", self._tokens),
        )
        for dimension, state in pairs:
            quiet = now - state.last_cut - self._policy.quiet_period
            if not self._measure:
                # A shared limiter: grow from the rate every process sees, so that a cut made
                # by another process is not overwritten by this one's older figure.
                shared = (
                    self._limiter.requests_per_second
                    if dimension == "requests"
                    else self._limiter.tokens_per_minute
                )
                if shared is not None:
                    state.rate = state.applied = shared
            if state.rate is None or quiet < 0:
                continue
            rate = state.rate
            if (
                state.cut_at is not None
                and state.recover_from is not None
                and (rate < 0.98 * state.cut_at)
            ):
                step = (state.cut_at - state.recover_from) / self._policy.recovery_seconds
                rate = min(0.98 * state.cut_at, rate + step * elapsed)
            else:
                # The longer no 429 has come, the less the old limit holds: probing speeds up,
                # doubling every few seconds, so a raised limit is found in seconds, not minutes.
                fraction = self._policy.probe_fraction * 2.0 ** min(quiet / _PROBE_DOUBLING, 3.0)
                rate *= 1.0 + fraction * elapsed
            if state.ceiling is not None:
                rate = min(rate, state.ceiling)
            state.rate = rate
            applied = state.applied
            if (
                applied is None
                or rate > applied * (1.0 + _CHANGE_WORTH_APPLYING)
                or (rate == state.ceiling and rate != applied)
            ):
                self._set(dimension, rate, now, "probing up")

    def _set(self, dimension: Dimension, rate: float, now: float, reason: str) -> None:
        state = self._requests if dimension == "requests" else self._tokens
        state.rate = rate
        state.applied = rate
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
