"""One dimension of credit: a continuously refilled token bucket that can be resized live.

aiolimiter's leaky bucket is the model, but it cannot change its drain rate while in use, has no
refund and serves the smallest request first; this bucket is a plain value that the limiter drives
(the waiting order is the scheduler's priority queue, not the bucket's), so none of that applies.

A request larger than the whole capacity is admitted once the bucket is full and leaves it in
debt, so an oversized job waits its fair time instead of hanging forever (openlimit's bug).
"""

from __future__ import annotations

import math

__all__ = ["Bucket"]

_EPSILON = 1e-9


class Bucket:
    """Credit that refills at ``rate`` units per second up to ``capacity``."""

    __slots__ = ("_capacity", "_level", "_rate", "_updated")

    def __init__(
        self, *, rate: float, capacity: float, now: float, level: float | None = None
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive finite number, got {rate!r}")
        if not (capacity > 0 and math.isfinite(capacity)):
            raise ValueError(f"capacity must be a positive finite number, got {capacity!r}")
        self._rate = rate
        self._capacity = capacity
        self._level = capacity if level is None else min(level, capacity)
        self._updated = now

    @property
    def rate(self) -> float:
        """Refill in units per second."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most credit the bucket holds (the burst)."""
        return self._capacity

    def level(self, now: float) -> float:
        """Credit available at ``now`` (negative while in debt)."""
        self._refill(now)
        return self._level

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._level = min(self._capacity, self._level + elapsed * self._rate)
            self._updated = now

    def delay(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` can be taken (0.0 when it can be taken now)."""
        self._refill(now)
        needed = min(cost, self._capacity)
        # Refill arithmetic leaves float dust (8.999999999 for 9): a wait shorter than the clock
        # can represent would wake the caller at the same instant, forever.
        if self._level >= needed - _EPSILON:
            return 0.0
        return (needed - self._level) / self._rate

    def take(self, cost: float, now: float) -> None:
        """Take ``cost`` credit (the caller checked :meth:`delay`); may leave debt."""
        self._refill(now)
        # Debt is capped at one bucket: a server reporting absurd usage must not stall us forever.
        self._level = max(self._level - cost, -self._capacity)

    def give_back(self, amount: float, now: float) -> None:
        """Return unused credit, never above capacity."""
        self._refill(now)
        self._level = min(self._capacity, self._level + amount)

    def clamp(self, most: float, now: float) -> None:
        """Lower the level to ``most`` when the server says less is left than we think."""
        self._refill(now)
        self._level = min(self._level, most)

    def resize(self, *, rate: float, capacity: float, now: float) -> None:
        """Change rate and capacity live; the level never jumps up, only clamps down."""
        if not (rate > 0 and math.isfinite(rate)) or not (capacity > 0 and math.isfinite(capacity)):
            raise ValueError("rate and capacity must be positive finite numbers")
        self._refill(now)
        self._rate = rate
        self._capacity = capacity
        self._level = min(self._level, capacity)

    def __repr__(self) -> str:
        return (
            f"Bucket(rate={self._rate:g}/s, capacity={self._capacity:g}, level={self._level:.3f})"
        )
