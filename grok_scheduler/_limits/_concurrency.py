"""How many calls of one model may be in flight: Little's law, not a fixed worker count.

In flight = rate x latency. With ten-second answers, 32 calls in flight cap the rate at 3.2 per
second whatever the limit allows, so the bound follows the learned rate and the observed
latency: ``ceil(rate x slow latency x 1.5) + 2``, where the slow latency is the 90th percentile
of the last 64 calls. While no rate is known the bound starts at ``initial`` and doubles, at
most once per slow latency, whenever every slot was busy with work waiting and no 429 came
lately (TCP's slow start), so an unlimited server is filled and a limited one soon says 429.

An explicit ``max_concurrency`` stays a hard cap; ``cap`` bounds the automatic size.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["ConcurrencyLimit"]

_WINDOW = 64
_HEADROOM = 1.5
_SPARE = 2
_PERCENTILE = 0.9
_QUIET = 2.0


class ConcurrencyLimit:
    """The in-flight bound of one model (``fixed``: the user's hard cap, else Little's law)."""

    __slots__ = (
        "_cap",
        "_fixed",
        "_last_429",
        "_last_growth",
        "_latencies",
        "_probe",
        "_slow",
        "_unsorted",
    )

    def __init__(self, *, fixed: int | None, cap: int = 1024, initial: int = 32) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError("max_concurrency must be at least 1")
        if cap < 1:
            raise ValueError("the concurrency cap must be at least 1")
        self._fixed = fixed
        self._cap = cap if fixed is None else fixed
        self._probe = min(initial, self._cap)
        self._latencies: deque[float] = deque(maxlen=_WINDOW)
        self._slow = 0.0
        self._unsorted = 0
        self._last_growth = -math.inf
        self._last_429 = -math.inf

    @property
    def fixed(self) -> bool:
        """True when the user set the bound."""
        return self._fixed is not None

    @property
    def slow_latency(self) -> float:
        """The 90th percentile of recent call times (0.0 before any call)."""
        return self._slow

    def observe(self, seconds: float) -> None:
        """A call took ``seconds``."""
        if not seconds >= 0 or not math.isfinite(seconds):
            return
        self._latencies.append(seconds)
        self._unsorted += 1
        # The percentile is refreshed every few calls: a sort per call costs at 3,000 calls/s.
        if self._unsorted >= 8 or len(self._latencies) <= 8 or seconds > self._slow:
            self._unsorted = 0
            ordered = sorted(self._latencies)
            self._slow = ordered[min(len(ordered) - 1, int(_PERCENTILE * len(ordered)))]

    def on_rate_limited(self, now: float) -> None:
        """A 429 came: slow start stops growing for a while."""
        self._last_429 = now

    def on_saturated(self, now: float) -> float:
        """Every slot was busy while work waited: grow the slow-start bound if quiet.

        Returns when to look again (``inf``: the bound cannot grow by waiting): answers may be
        minutes away, so the gate must not rely on one to wake it.
        """
        if self._fixed is not None or self._probe >= self._cap:
            return math.inf
        # Compared as instants, not as elapsed times: ``now - last < interval`` can hold while
        # ``last + interval == now`` in float arithmetic, and the gate, told to look again now,
        # would ask again at once forever (a livelock on a FakeClock).
        if now < self._last_429 + _QUIET:
            return self._last_429 + _QUIET
        interval = max(0.5, self._slow)
        if now < self._last_growth + interval:
            return self._last_growth + interval
        self._last_growth = now
        self._probe = min(self._cap, self._probe * 2)
        return now

    def limit(self, requests_per_second: float | None) -> int:
        """The in-flight bound now, at the given request rate (None: not known)."""
        if self._fixed is not None:
            return self._fixed
        if requests_per_second is None or self._slow <= 0.0:
            return self._probe
        needed = math.ceil(requests_per_second * self._slow * _HEADROOM) + _SPARE
        return max(1, min(self._cap, max(needed, 4)))

    def __repr__(self) -> str:
        return (
            f"ConcurrencyLimit(fixed={self._fixed}, cap={self._cap}, probe={self._probe}, "
            f"slow_latency={self._slow:.3f})"
        )
