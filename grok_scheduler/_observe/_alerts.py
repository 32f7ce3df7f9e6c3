"""Alerts: tell the user when a run goes wrong, once when it starts and once when it ends.

:class:`AlertMonitor` is fed by the scheduler (``now`` passed in, no clock reads) and watches four
conditions. Each one fires an :class:`Alert` with ``firing=True`` when it starts and one with
``firing=False`` when it ends, through the ``on_alert`` callback and a structlog event
(``grok_scheduler.alert`` / ``grok_scheduler.alert_recovered``, flat fields ``kind``,
``message``, ``value``, ``threshold``):

- ``error_rate``: failed attempts / attempts over ``error_window`` reaches ``error_rate`` (with at
  least ``min_calls`` attempts); ends when the ratio drops below ``error_rate_clear`` (half the
  threshold by default), so a ratio hovering at the threshold does not flap.
- ``rate_limited``: 429s keep coming for ``rate_limited_for`` seconds with no successful call in
  between and no quiet gap longer than ``rate_limited_for``; ends at the next successful call
  (or when 429s resume after such a gap).
- ``queue_wait``: the oldest queued job has waited longer than ``max_queue_wait``; ends when the
  oldest wait is back within it.
- ``budget``: the used fraction of a token or cost budget reaches ``budget_warn_fraction``; ends
  when it is below again (a new budget).

Both edges are logged at WARNING: a reader filtering at the default level who saw an alert must
also see it end. An alert that fired cannot fire again within ``min_refire_interval`` seconds of
its last firing, even if it recovered in between (it fires at the next observation after that,
if the condition still holds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._guards._breaker import OutcomeWindow
from ._events import events as _log

__all__ = ["Alert", "AlertKind", "AlertMonitor", "AlertPolicy"]

AlertKind = Literal["error_rate", "rate_limited", "queue_wait", "budget"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert starting (``firing=True``) or ending (``firing=False``, recovered)."""

    kind: AlertKind
    firing: bool
    message: str
    value: float
    """The measured value: a ratio, seconds, or a fraction of the budget."""
    threshold: float
    """The bound it is compared with (same unit as ``value``)."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Thresholds for the four alerts."""

    error_rate: float = 0.2
    """Fire when at least this fraction of attempts in the window failed."""
    error_window: float = 60.0
    """Seconds of attempts the error rate is computed over."""
    min_calls: int = 20
    """Fewer attempts than this in the window never fire the error-rate alert."""
    rate_limited_for: float = 30.0
    """Fire when 429s have been seen continuously (no success in between) this long."""
    max_queue_wait: float = 300.0
    """Fire when the oldest queued job has waited longer than this."""
    budget_warn_fraction: float = 0.9
    """Fire when this fraction of a budget is used."""
    error_rate_clear: float | None = None
    """The error-rate alert recovers only below this ratio (default: ``error_rate / 2``)."""
    min_refire_interval: float = 60.0
    """Seconds after an alert fired during which the same kind cannot fire again."""

    def __post_init__(self) -> None:
        for name in ("error_window", "rate_limited_for", "max_queue_wait"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("error_rate", "budget_warn_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if not isinstance(self.min_calls, int) or self.min_calls < 1:
            raise ValueError(f"min_calls must be a positive int, got {self.min_calls!r}")
        clear = self.error_rate_clear
        if clear is not None and not 0 < clear <= self.error_rate:
            raise ValueError(f"error_rate_clear must be in (0, error_rate], got {clear!r}")
        refire = self.min_refire_interval
        if not (refire >= 0 and math.isfinite(refire)):
            raise ValueError(f"min_refire_interval must be >= 0 and finite, got {refire!r}")

    @property
    def error_rate_recovery(self) -> float:
        """The ratio the error-rate alert must drop below to recover."""
        return self.error_rate / 2 if self.error_rate_clear is None else self.error_rate_clear


class AlertMonitor:
    """Watches attempts, 429s, queue waits and budget use; reports each condition's edges."""

    __slots__ = (
        "_active",
        "_calls",
        "_fired_at",
        "_last_429",
        "_on_alert",
        "_policy",
        "_streak_start",
    )

    def __init__(
        self,
        policy: AlertPolicy | None = None,
        *,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self._policy = policy or AlertPolicy()
        self._on_alert = on_alert
        self._calls = OutcomeWindow(self._policy.error_window)
        self._active: set[str] = set()
        self._fired_at: dict[str, float] = {}
        self._streak_start: float | None = None
        self._last_429 = 0.0

    @property
    def policy(self) -> AlertPolicy:
        """The thresholds."""
        return self._policy

    def active(self) -> frozenset[str]:
        """The kinds currently firing."""
        return frozenset(self._active)

    def record_call(self, ok: bool, now: float) -> None:
        """One finished attempt: ``ok=False`` for any failure except a 429 rate limit.

        (429s go to :meth:`record_rate_limited`, so a rate-limit storm raises one alert, not two.)
        """
        calls = self._calls
        calls.add(ok, now)
        policy = self._policy
        ratio = calls.ratio
        if "error_rate" in self._active:
            # Hysteresis: a ratio hovering at the threshold must not fire and recover by turns.
            if ratio < policy.error_rate_recovery:
                self._recover("error_rate", ratio, policy.error_rate, self._error_text(ratio))
        elif calls.calls >= policy.min_calls and ratio >= policy.error_rate:
            self._fire("error_rate", now, ratio, policy.error_rate, self._error_text(ratio))
        if ok and self._streak_start is not None:
            self._end_streak()

    def record_rate_limited(self, now: float) -> None:
        """One attempt answered with a 429 rate limit."""
        limit = self._policy.rate_limited_for
        if self._streak_start is not None and now - self._last_429 > limit:
            # A long quiet gap: the earlier 429s were a different episode.
            self._end_streak()
        if self._streak_start is None:
            self._streak_start = now
        self._last_429 = now
        lasted = now - self._streak_start
        if lasted >= limit and "rate_limited" not in self._active:
            self._fire(
                "rate_limited",
                now,
                lasted,
                limit,
                f"429 rate limits for {lasted:.0f}s without a successful call",
            )

    def record_queue_wait(self, seconds: float, now: float) -> None:
        """The oldest queued job has waited ``seconds`` (0.0 for an empty queue)."""
        limit = self._policy.max_queue_wait
        if seconds > limit:
            if "queue_wait" not in self._active:
                self._fire(
                    "queue_wait",
                    now,
                    seconds,
                    limit,
                    f"a job has waited {seconds:.0f}s in the queue (bound {limit:g}s)",
                )
        elif "queue_wait" in self._active:
            self._recover(
                "queue_wait",
                seconds,
                limit,
                f"the oldest queued job has waited {seconds:.0f}s, within {limit:g}s",
            )

    def record_budget(self, used_fraction: float, now: float) -> None:
        """The budget's used fraction (max over tokens and cost)."""
        warn = self._policy.budget_warn_fraction
        text = f"{used_fraction:.0%} of the budget is used (warning at {warn:.0%})"
        if used_fraction >= warn:
            if "budget" not in self._active:
                self._fire("budget", now, used_fraction, warn, text)
        elif "budget" in self._active:
            self._recover("budget", used_fraction, warn, text)

    def _error_text(self, ratio: float) -> str:
        calls = self._calls
        return (
            f"{ratio:.0%} of attempts failed over the last {calls.seconds:g}s "
            f"({calls.failures}/{calls.calls}; threshold {self._policy.error_rate:.0%})"
        )

    def _end_streak(self) -> None:
        lasted = self._last_429 - (self._streak_start or self._last_429)
        self._streak_start = None
        if "rate_limited" in self._active:
            self._recover(
                "rate_limited",
                lasted,
                self._policy.rate_limited_for,
                f"429 rate limits ended after {lasted:.0f}s",
            )

    def _fire(
        self, kind: AlertKind, now: float, value: float, threshold: float, message: str
    ) -> None:
        last = self._fired_at.get(kind)
        if last is not None and now - last < self._policy.min_refire_interval:
            return  # it fired moments ago: say it again later if it still holds, not now
        self._fired_at[kind] = now
        self._active.add(kind)
        _log.warning(
            "grok_scheduler.alert", kind=kind, message=message, value=value, threshold=threshold
        )
        self._emit(Alert(kind, True, message, value, threshold))

    def _recover(self, kind: AlertKind, value: float, threshold: float, message: str) -> None:
        self._active.discard(kind)
        # The level of the alert itself: whoever saw it fire at WARNING must see it end.
        _log.warning(
            "grok_scheduler.alert_recovered",
            kind=kind,
            message=message,
            value=value,
            threshold=threshold,
        )
        self._emit(Alert(kind, False, message, value, threshold))

    def _emit(self, alert: Alert) -> None:
        if self._on_alert is None:
            return
        try:
            self._on_alert(alert)
        except Exception as exc:  # a user's hook must never break scheduling
            _log.exception(
                "grok_scheduler.callback_failed", callback="on_alert", error_type=type(exc).__name__
            )

    def __repr__(self) -> str:
        return f"AlertMonitor(active={sorted(self._active)}, policy={self._policy!r})"
