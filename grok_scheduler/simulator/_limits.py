"""Server-side rate limits of one model: the simulator's honest referee.

Token buckets, as a real provider enforces them (xAI keeps a set per team and model):

* requests: capacity ``max(1, rps * burst_seconds)``, refilled at ``rps`` per second;
* requests per minute (optional): capacity ``rpm``, refilled at ``rpm / 60`` per second;
* tokens: capacity ``tpm``, refilled at ``tpm / 60`` per second.

A request is admitted only if every bucket can pay for it; a rejected request pays nothing
and learns which buckets refused it, with xAI's *actual* (what the request would have made the
use of that window) and *limit*.
The token bucket is charged a *reservation* at admission (prompt plus the most the answer may
use) and later settled down to the real total, like a server that must decide before it knows
how long the answer will be.

``neighbour_share`` models another client spending the same key: that share of every refill is
consumed silently, so the client sees only the remainder while headers still report the full
limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Dimension = Literal["requests", "tokens"]


class Bucket:
    """A token bucket measured in seconds of the world's clock."""

    __slots__ = ("capacity", "level", "limit", "refill_per_second", "stamp")

    def __init__(self, *, limit: float, capacity: float, refill: float, now: float) -> None:
        self.limit = limit  # the advertised limit, before any neighbour takes a share
        self.capacity = capacity
        self.refill_per_second = refill
        self.level = capacity
        self.stamp = now

    def __repr__(self) -> str:
        return (
            f"Bucket(limit={self.limit}, capacity={self.capacity}, "
            f"refill_per_second={self.refill_per_second}, level={self.level:.3f})"
        )

    def refill(self, now: float) -> None:
        """Add what has dripped in since the last look, up to the capacity."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.refill_per_second)
            self.stamp = now

    def seconds_until(self, amount: float) -> float:
        """Seconds until ``amount`` is available (``inf`` if it never fits)."""
        if amount > self.capacity:
            return math.inf
        deficit = amount - self.level
        return max(0.0, deficit / self.refill_per_second)

    def seconds_until_full(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, (self.capacity - self.level) / self.refill_per_second)

    def resize(self, *, limit: float, capacity: float, refill: float, now: float) -> None:
        """Change the limit live: refill at the old rate up to now, then clamp to the new size."""
        self.refill(now)
        self.limit = limit
        self.capacity = capacity
        self.refill_per_second = refill
        self.level = min(self.level, capacity)


Window = Literal["second", "minute"]


@dataclass(frozen=True, slots=True)
class Exceeded:
    """One limit a refused request ran into, as xAI states it: ``actual/limit`` per window."""

    dimension: Dimension
    window: Window
    actual: float
    limit: float


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused and when it could have been admitted."""

    dimension: Dimension
    retry_after: float
    reserved_tokens: int
    exceeded: tuple[Exceeded, ...] = ()


def _actual(bucket: Bucket, amount: float) -> float:
    # What this request would have made the use of the window: spent so far plus itself. The
    # epsilon keeps float dust (2.0000000001) from rounding a count up.
    return float(math.ceil(bucket.capacity - bucket.level + amount - 1e-9))


class ServerLimits:
    """The buckets of one model of one API key; ``None`` for a limit means unlimited."""

    __slots__ = (
        "burst_seconds",
        "neighbour_share",
        "requests",
        "requests_per_minute",
        "tokens",
    )

    def __init__(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float,
        neighbour_share: float,
        now: float,
        requests_per_minute: float | None = None,
    ) -> None:
        self.requests: Bucket | None = None
        self.requests_per_minute: Bucket | None = None
        self.tokens: Bucket | None = None
        self.burst_seconds = burst_seconds
        self.neighbour_share = neighbour_share
        self.configure(
            requests_per_second=requests_per_second,
            tokens_per_minute=tokens_per_minute,
            requests_per_minute=requests_per_minute,
            burst_seconds=burst_seconds,
            neighbour_share=neighbour_share,
            now=now,
        )

    def __repr__(self) -> str:
        extra = (
            f", requests_per_minute={self.requests_per_minute!r}"
            if self.requests_per_minute is not None
            else ""
        )
        return f"ServerLimits(requests={self.requests!r}, tokens={self.tokens!r}{extra})"

    def matches(
        self,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float,
        neighbour_share: float,
        requests_per_minute: float | None = None,
    ) -> bool:
        """True if the buckets already implement these settings (checked on every request)."""
        rps = self.requests.limit if self.requests is not None else None
        tpm = self.tokens.limit if self.tokens is not None else None
        rpm = self.requests_per_minute.limit if self.requests_per_minute is not None else None
        return (
            rps == requests_per_second
            and tpm == tokens_per_minute
            and rpm == requests_per_minute
            and burst_seconds == self.burst_seconds
            and neighbour_share == self.neighbour_share
        )

    def configure(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float,
        neighbour_share: float,
        now: float,
        requests_per_minute: float | None = None,
    ) -> None:
        """Apply new limits immediately, keeping (and clamping) what the buckets hold."""
        self.burst_seconds = burst_seconds
        self.neighbour_share = neighbour_share
        keep = 1.0 - neighbour_share
        self.requests = _reshape(
            self.requests,
            requests_per_second,
            max(1.0, requests_per_second * burst_seconds) if requests_per_second else 0.0,
            (requests_per_second or 0.0) * keep,
            now,
        )
        self.requests_per_minute = _reshape(
            self.requests_per_minute,
            requests_per_minute,
            max(1.0, requests_per_minute or 0.0),
            (requests_per_minute or 0.0) / 60.0 * keep,
            now,
        )
        self.tokens = _reshape(
            self.tokens,
            tokens_per_minute,
            tokens_per_minute or 0.0,
            (tokens_per_minute or 0.0) / 60.0 * keep,
            now,
        )

    def try_admit(self, reserved_tokens: int, now: float) -> Rejection | None:
        """Charge one request and ``reserved_tokens``, or refuse and charge nothing."""
        checks: list[tuple[Bucket, float, Dimension, Window]] = []
        if self.requests is not None:
            checks.append((self.requests, 1.0, "requests", "second"))
        if self.requests_per_minute is not None:
            checks.append((self.requests_per_minute, 1.0, "requests", "minute"))
        if self.tokens is not None:
            checks.append((self.tokens, float(reserved_tokens), "tokens", "minute"))
        exceeded: list[Exceeded] = []
        wait = 0.0
        for bucket, amount, dimension, window in checks:
            bucket.refill(now)
            needed = bucket.seconds_until(amount)
            if needed > 0:
                wait = max(wait, needed)
                exceeded.append(Exceeded(dimension, window, _actual(bucket, amount), bucket.limit))
        if exceeded:
            dimension = "requests" if exceeded[0].dimension == "requests" else "tokens"
            return Rejection(dimension, wait, reserved_tokens, tuple(exceeded))
        for bucket, amount, _, _ in checks:
            bucket.level -= amount
        return None

    def settle(self, reserved_tokens: int, actual_tokens: int, now: float) -> None:
        """Give back the part of a reservation the answer did not use."""
        tokens = self.tokens
        if tokens is not None:
            tokens.refill(now)
            tokens.level = min(tokens.capacity, tokens.level + reserved_tokens - actual_tokens)


def _reshape(
    bucket: Bucket | None, limit: float | None, capacity: float, refill: float, now: float
) -> Bucket | None:
    if limit is None:
        return None
    if bucket is None:
        return Bucket(limit=limit, capacity=capacity, refill=refill, now=now)
    bucket.resize(limit=limit, capacity=capacity, refill=refill, now=now)
    return bucket
