"""A circuit breaker: stop sending while the server keeps failing, then probe and resume.

The breaker is a pure state machine driven by the caller's clock (``now`` is passed in)::

    closed --(>= min_calls in window, failures/calls >= failure_ratio)--> open
    open --(cooldown passed; delay() hands out one probe)--> half_open
    half_open --(probe ok)--> closed (window cleared, cooldown reset)
    half_open --(probe failed)--> open (cooldown doubled, up to max_cooldown)

Only a probe decides the half-open state: a call sent before the cooldown ended (one in flight
when the breaker opened, answering late) says nothing about the server now, so a result whose
``sent_at`` is before the end of the cooldown is ignored while half-open.

Only server-side failures count (5xx, timeouts, connection errors): a 4xx means the server is up
and answering, so it is recorded as ok. Calls still in flight count as not failed (yet): with
answers taking seconds, failures (which come back at once) would otherwise outnumber the
successes still on their way and open the breaker on a healthy server. The caller asks
:meth:`CircuitBreaker.delay` before each send and reports each answered or failed call with
:meth:`CircuitBreaker.record`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._observe._events import events as _log

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker", "OutcomeWindow"]

BreakerState = Literal["closed", "open", "half_open"]


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


_SLOTS_PER_WINDOW = 300


class OutcomeWindow:
    """Counts of ok and failed calls over the last ``seconds``.

    Calls are grouped in slots of ``seconds / 300``: memory stays at a few hundred entries
    whatever the call rate (one entry per call would hold tens of MB at thousands of calls a
    second), at the price of a slot's calls leaving the window together.
    """

    __slots__ = ("_entries", "_slot", "calls", "failures", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._slot = seconds / _SLOTS_PER_WINDOW
        self._entries: deque[list[float]] = deque()  # [slot start, calls, failures]
        self.calls = 0
        self.failures = 0

    @property
    def ratio(self) -> float:
        """Failures per call (0.0 when empty)."""
        return self.failures / self.calls if self.calls else 0.0

    def add(self, ok: bool, now: float) -> None:
        """Count one call at ``now`` and forget those older than the window."""
        entries = self._entries
        failed = 0 if ok else 1
        if entries and 0.0 <= now - entries[-1][0] < self._slot:
            last = entries[-1]
            last[1] += 1
            last[2] += failed
        else:
            entries.append([now, 1, failed])
        self.calls += 1
        self.failures += failed
        horizon = now - self.seconds
        while entries[0][0] <= horizon:
            _, calls, failures = entries.popleft()
            self.calls -= int(calls)
            self.failures -= int(failures)

    def clear(self) -> None:
        """Forget every call."""
        self._entries.clear()
        self.calls = 0
        self.failures = 0

    def __repr__(self) -> str:
        return (
            f"OutcomeWindow(seconds={self.seconds:g}, calls={self.calls}, failures={self.failures})"
        )


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When the breaker opens and how long it stays open."""

    window: float = 30.0
    """Seconds of recent calls the failure ratio is computed over."""
    min_calls: int = 20
    """Fewer calls than this in the window never open the breaker (too little evidence)."""
    failure_ratio: float = 0.8
    """Open when at least this fraction of the window's calls failed server-side ("most")."""
    cooldown: float = 2.0
    """Seconds to stay open before the first probe: short, since it doubles while probes fail
    (a cluster of transient faults must not hold a healthy run for long)."""
    max_cooldown: float = 60.0
    """Upper bound for the cooldown, which doubles each time a probe fails."""

    def __post_init__(self) -> None:
        _positive("window", self.window)
        _positive("cooldown", self.cooldown)
        _positive("max_cooldown", self.max_cooldown)
        if not isinstance(self.min_calls, int) or self.min_calls < 1:
            raise ValueError(f"min_calls must be a positive int, got {self.min_calls!r}")
        if not 0 < self.failure_ratio <= 1:
            raise ValueError(f"failure_ratio must be in (0, 1], got {self.failure_ratio!r}")
        if self.max_cooldown < self.cooldown:
            raise ValueError("max_cooldown must be at least cooldown")


class CircuitBreaker:
    """Tracks server-side failures over a sliding window and holds calls back when they pile up.

    ``state`` reflects the last :meth:`delay` or :meth:`record` call: an open breaker whose
    cooldown has run out turns half-open the next time :meth:`delay` is asked.
    """

    __slots__ = (
        "_cooldown",
        "_in_flight",
        "_listeners",
        "_open_until",
        "_policy",
        "_probe_sent_at",
        "_state",
        "_window",
    )

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        self._policy = policy or BreakerPolicy()
        self._in_flight = in_flight
        self._state: BreakerState = "closed"
        self._window = OutcomeWindow(self._policy.window)
        self._cooldown = self._policy.cooldown
        self._open_until = 0.0
        self._probe_sent_at: float | None = None
        self._listeners: list[Callable[[str, str], None]] = []

    @property
    def policy(self) -> BreakerPolicy:
        """The configuration."""
        return self._policy

    @property
    def state(self) -> BreakerState:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        return self._state

    @property
    def cooldown(self) -> float:
        """The cooldown the breaker uses the next (or current) time it is open."""
        return self._cooldown

    def on_transition(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(old_state, new_state)`` on every state change (errors are logged)."""
        self._listeners.append(callback)

    def delay(self, now: float) -> float:
        """0.0 when a call may be sent now; otherwise seconds until the next probe may go.

        Half-open lets exactly one probe through: the first caller gets 0.0, later callers wait
        until that probe is recorded. A probe never recorded (its caller vanished) is replaced
        after one cooldown, so a lost probe cannot wedge the breaker.
        """
        state = self._state
        if state == "closed":
            return 0.0
        if state == "open":
            if now < self._open_until:
                return self._open_until - now
            self._transition("half_open")
        probe_sent_at = self._probe_sent_at
        if probe_sent_at is not None:
            # Computed as one difference so that "not yet" is always a positive wait.
            remaining = probe_sent_at + self._cooldown - now
            if remaining > 0.0:
                return remaining
        self._probe_sent_at = now
        return 0.0

    def record(self, ok: bool, now: float, *, sent_at: float | None = None) -> None:
        """Report one call: ``ok=False`` only for server-side failures (5xx, timeout, connect).

        ``sent_at`` is when the call was sent (same clock as ``now``). While half-open, a call
        sent before the cooldown ended is not the probe and decides nothing; without
        ``sent_at`` the first result heard decides, as a caller that cannot tell must accept.
        """
        state = self._state
        if state == "closed":
            self._window.add(ok, now)
            if self._should_open():
                self._open(now)
        elif state == "half_open":
            if sent_at is not None and sent_at < self._open_until:
                return  # a late answer to a call sent before the breaker opened
            # The probe's result decides: the server either answers now or not.
            if ok:
                self._close()
            else:
                self._cooldown = min(self._cooldown * 2, self._policy.max_cooldown)
                self._open(now)
        # While open, results of calls sent before it opened add nothing: the decision is made.

    def _should_open(self) -> bool:
        window = self._window
        policy = self._policy
        if window.calls < policy.min_calls:
            return False
        pending = self._in_flight() if self._in_flight is not None else 0
        return window.failures >= policy.failure_ratio * (window.calls + max(0, pending))

    def _open(self, now: float) -> None:
        self._open_until = now + self._cooldown
        self._probe_sent_at = None
        self._transition("open")

    def _close(self) -> None:
        self._window.clear()
        self._cooldown = self._policy.cooldown
        self._probe_sent_at = None
        self._transition("closed")

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        log = _log.warning if new == "open" else _log.info
        log(
            "grok_scheduler.circuit_breaker",
            old_state=old,
            new_state=new,
            failures=self._window.failures,
            calls=self._window.calls,
            cooldown=self._cooldown,
        )
        for callback in tuple(self._listeners):
            try:
                callback(old, new)
            except Exception as exc:  # a listener's bug must not break the breaker
                _log.exception(
                    "grok_scheduler.callback_failed",
                    callback="on_transition",
                    error_type=type(exc).__name__,
                )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state!r}, calls={self._window.calls}, "
            f"failures={self._window.failures}, cooldown={self._cooldown:g}, "
            f"policy={self._policy!r})"
        )
