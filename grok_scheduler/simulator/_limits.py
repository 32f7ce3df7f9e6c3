"""Server-side rate limits: the simulator's honest referee.

Two token buckets, as a real provider enforces them:

* requests: capacity ``max(1, rps * burst_seconds)``, refilled at ``rps`` per second;
* tokens: capacity ``tpm``, refilled at ``tpm / 60`` per second.

A request is admitted only if both buckets can pay for it; a rejected request pays nothing.
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
    """A token bucket measured in time from ``time.monotonic()``."""

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


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused and when it could have been admitted."""

    dimension: Dimension
    retry_after: float
    reserved_tokens: int


class ServerLimits:
    """Both buckets of one API key; ``None`` for a dimension means unlimited."""

    __slots__ = ("burst_seconds", "neighbour_share", "requests", "tokens")

    def __init__(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float,
        neighbour_share: float,
        now: float,
    ) -> None:
        self.requests: Bucket | None = None
        self.tokens: Bucket | None = None
        self.burst_seconds = burst_seconds
        self.neighbour_share = neighbour_share
        self.configure(
            requests_per_second=requests_per_second,
            tokens_per_minute=tokens_per_minute,
            burst_seconds=burst_seconds,
            neighbour_share=neighbour_share,
            now=now,
        )

    def __repr__(self) -> str:
        return f"ServerLimits(requests={self.requests!r}, tokens={self.tokens!r})"

    def matches(
        self,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float,
        neighbour_share: float,
    ) -> bool:
        """True if the buckets already implement these settings (checked on every request)."""
        rps = self.requests.limit if self.requests is not None else None
        tpm = self.tokens.limit if self.tokens is not None else None
        return (
            rps == requests_per_second
            and tpm == tokens_per_minute
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
        self.tokens = _reshape(
            self.tokens,
            tokens_per_minute,
            tokens_per_minute or 0.0,
            (tokens_per_minute or 0.0) / 60.0 * keep,
            now,
        )

    def try_admit(self, reserved_tokens: int, now: float) -> Rejection | None:
        """Charge one request and ``reserved_tokens``, or refuse and charge nothing."""
        requests, tokens = self.requests, self.tokens
        wait_requests = wait_tokens = 0.0
        if requests is not None:
            requests.refill(now)
            wait_requests = requests.seconds_until(1.0)
        if tokens is not None:
            tokens.refill(now)
            wait_tokens = tokens.seconds_until(reserved_tokens)
        if wait_requests > 0 or wait_tokens > 0:
            dimension: Dimension = "requests" if wait_requests > 0 else "tokens"
            return Rejection(dimension, max(wait_requests, wait_tokens), reserved_tokens)
        if requests is not None:
            requests.level -= 1.0
        if tokens is not None:
            tokens.level -= reserved_tokens
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


# --- headers -------------------------------------------------------------------------------


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String``: ``120ms``, ``1s``, ``6m0s``, ``1h2m3.5s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = round(seconds * 1000, 3)
        return f"{ms:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}"


def rate_limit_headers(
    mode: str, limits: ServerLimits, rejection: Rejection | None
) -> dict[str, str] | None:
    """The rate-limit headers of one response in the given family (``None`` for "none").

    Must be called right after ``try_admit`` so the buckets are refilled to the current time.
    Limits are the advertised ones; remaining and reset come from the real (shared) buckets.
    """
    if mode == "none":
        return None
    if mode == "openai":
        headers = _openai_headers(limits)
    elif mode == "ietf":
        headers = _ietf_headers(limits)
    else:
        headers = _generic_headers(limits)
    if rejection is not None:
        wait = rejection.retry_after if math.isfinite(rejection.retry_after) else 60.0
        headers["retry-after"] = _seconds(wait)
        if mode == "openai":
            headers["retry-after-ms"] = _seconds(wait * 1000)
    return headers


def _openai_headers(limits: ServerLimits) -> dict[str, str]:
    headers: dict[str, str] = {}
    requests, tokens = limits.requests, limits.tokens
    if requests is not None:
        headers["x-ratelimit-limit-requests"] = _number(round(requests.limit * 60, 3))
        headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(requests.level)))
        headers["x-ratelimit-reset-requests"] = go_duration(requests.seconds_until_full())
    if tokens is not None:
        headers["x-ratelimit-limit-tokens"] = _number(tokens.limit)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(tokens.level)))
        headers["x-ratelimit-reset-tokens"] = go_duration(tokens.seconds_until_full())
    return headers


def _ietf_headers(limits: ServerLimits) -> dict[str, str]:
    policies: list[str] = []
    states: list[str] = []
    requests, tokens = limits.requests, limits.tokens
    if requests is not None:
        quota = max(1.0, requests.limit * limits.burst_seconds)
        policies.append(f'"requests";q={math.floor(quota)};w=1')
        states.append(
            f'"requests";r={max(0, math.floor(requests.level))};'
            f"t={math.ceil(requests.seconds_until_full())}"
        )
    if tokens is not None:
        policies.append(f'"tokens";q={math.floor(tokens.limit)};w=60;u="tokens"')
        states.append(
            f'"tokens";r={max(0, math.floor(tokens.level))};'
            f"t={math.ceil(tokens.seconds_until_full())}"
        )
    if not policies:
        return {}
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def _generic_headers(limits: ServerLimits) -> dict[str, str]:
    requests = limits.requests
    if requests is None:
        return {}
    return {
        "X-RateLimit-Limit": str(math.floor(requests.capacity)),
        "X-RateLimit-Remaining": str(max(0, math.floor(requests.level))),
        "X-RateLimit-Reset": _seconds(requests.seconds_until_full()),
    }
