"""LocalLimiter: the credit of one process, requests per second and tokens per minute together.

A job reserves one request and its estimated tokens before it is sent; the token reservation is
settled against ``usage.total_tokens`` when the answer arrives, or refunded whole when the job
never reached the server. Limits are resized live (from headers or the adaptive controller), the
level is synchronised with what the server says remains, and a 429 pauses every dispatch.

The limiter never queues anyone: the scheduler's gate asks :meth:`LocalLimiter.acquire` for the
most urgent job only and sleeps the returned delay, so waiters are served in priority order and
there is no polling. It implements :class:`~grok_scheduler.Limiter` (``_base.py``), as the Redis
limiter does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ._base import (
    NONE_REMAIN_REASON,
    TOKEN_WINDOW_SECONDS,
    Limiter,
    LimiterState,
    RateLimitHeaders,
    resync,
    stated_limits,
)
from ._bucket import Bucket
from ._ledger import SpendLedger

# Limiter, LimiterState and TOKEN_WINDOW_SECONDS live in _base; re-exported for the modules that
# import them from here.
__all__ = ["TOKEN_WINDOW_SECONDS", "Limiter", "LimiterState", "LocalLimiter"]

# Our buckets drain in step with the server's, so without headroom a request that arrives a
# little early (network or event-loop jitter) finds the server a fraction short: a 429. Keep this
# much refill time in hand in each dimension: a tenth of the one-second request burst, and a
# quarter second of tokens (a minute's burst minus 0.25 s, not minus a tenth of a minute).
_REQUEST_HEADROOM_SECONDS = 0.1
_TOKEN_HEADROOM_SECONDS = 0.25


def _valid_rate(value: float | None) -> float | None:
    if value is None:
        return None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"a limit must be a positive finite number or None, got {value!r}")
    return float(value)


class LocalLimiter:
    """Token buckets in this process: requests/s and tokens/min, plus requests/min once stated.

    xAI states a per-minute request limit beside the per-second one ("Requests per Minute
    (actual/limit): 1922/60"); it becomes a third bucket holding one minute of requests.
    """

    __slots__ = (
        "_burst_seconds",
        "_freshest_count",
        "_last_reason",
        "_listener",
        "_paused_until",
        "_per_minute",
        "_request_spend",
        "_requests",
        "_token_spend",
        "_tokens",
    )

    def __init__(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float = 1.0,
        now: float = 0.0,
    ) -> None:
        if not (burst_seconds > 0 and math.isfinite(burst_seconds)):
            raise ValueError("burst_seconds must be a positive finite number")
        self._burst_seconds = burst_seconds
        self._requests: Bucket | None = None
        self._tokens: Bucket | None = None
        self._per_minute: Bucket | None = None
        self._paused_until = -math.inf
        self._last_reason = "configured"
        self._listener: Callable[[], None] | None = None
        # What was sent lately and the send time of the freshest server count applied: a
        # count arriving late is aged by them (see observe_headers).
        self._request_spend = SpendLedger(now)
        self._token_spend = SpendLedger(now)
        self._freshest_count = -math.inf
        self._apply(_valid_rate(requests_per_second), _valid_rate(tokens_per_minute), now)

    # -- configuration ----------------------------------------------------------------------
    @property
    def requests_per_second(self) -> float | None:
        return self._requests.rate if self._requests else None

    @property
    def tokens_per_minute(self) -> float | None:
        return self._tokens.rate * TOKEN_WINDOW_SECONDS if self._tokens else None

    @property
    def measures_acceptance(self) -> bool:
        """True: this process alone spends this credit (see :class:`Limiter`)."""
        return True

    def _request_capacity(self, rps: float) -> float:
        # At least one whole request, or a slow limit could never admit anything.
        headroom = min(_REQUEST_HEADROOM_SECONDS, 0.1 * self._burst_seconds)
        return max(1.0, rps * (self._burst_seconds - headroom))

    @staticmethod
    def _token_capacity(tpm: float) -> float:
        return tpm * (1.0 - _TOKEN_HEADROOM_SECONDS / TOKEN_WINDOW_SECONDS)

    def _apply(
        self, rps: float | None, tpm: float | None, now: float, *, empty: bool = False
    ) -> None:
        if rps is None:
            self._requests = None
        elif self._requests is None:
            capacity = self._request_capacity(rps)
            # Start half full: a first burst of a whole second at a limit that may be set too
            # high (nothing has been heard from the server yet) would meet a wall of 429s. A
            # limit learned from a 429 starts empty: the server's bucket just ran dry.
            level = 0.0 if empty else capacity / 2
            self._requests = Bucket(rate=rps, capacity=capacity, now=now, level=level)
        else:
            self._requests.resize(rate=rps, capacity=self._request_capacity(rps), now=now)
        if tpm is None:
            self._tokens = None
        elif self._tokens is None:
            self._tokens = Bucket(
                rate=tpm / TOKEN_WINDOW_SECONDS,
                capacity=self._token_capacity(tpm),
                now=now,
                level=0.0 if empty else None,
            )
        else:
            self._tokens.resize(
                rate=tpm / TOKEN_WINDOW_SECONDS, capacity=self._token_capacity(tpm), now=now
            )

    def set_limits(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        now: float,
        reason: str,
    ) -> None:
        self._apply(
            _valid_rate(requests_per_second),
            _valid_rate(tokens_per_minute),
            now,
            empty="429" in reason,
        )
        self._last_reason = reason
        self._notify()

    def set_requests_per_minute(self, requests_per_minute: float | None, now: float) -> None:
        """Add, resize or (None) drop the per-minute request bucket."""
        rpm = _valid_rate(requests_per_minute)
        if rpm is None:
            self._per_minute = None
        elif self._per_minute is None:
            # Starts empty like a server that just refused us for it: no minute's burst at once.
            self._per_minute = Bucket(rate=rpm / 60.0, capacity=max(1.0, rpm), now=now, level=0.0)
        else:
            self._per_minute.resize(rate=rpm / 60.0, capacity=max(1.0, rpm), now=now)
        self._last_reason = "requests per minute stated"
        self._notify()

    @property
    def requests_per_minute(self) -> float | None:
        """The per-minute request limit, once one was stated (None: none)."""
        return self._per_minute.rate * 60.0 if self._per_minute else None

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener()

    # -- credit -----------------------------------------------------------------------------
    def delay(self, tokens: int, now: float) -> float:
        """Seconds until one request with ``tokens`` could be admitted (pure query)."""
        wait = self._paused_until - now
        if self._requests is not None:
            wait = max(wait, self._requests.delay(1.0, now))
        if self._per_minute is not None:
            wait = max(wait, self._per_minute.delay(1.0, now))
        if self._tokens is not None and tokens > 0:
            wait = max(wait, self._tokens.delay(float(tokens), now))
        return max(0.0, wait)

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        return self.try_acquire(tokens, now)

    def try_acquire(self, tokens: int, now: float) -> float:
        """Synchronous :meth:`acquire` (the local limiter never does I/O)."""
        wait = self.delay(tokens, now)
        if wait > 0.0:
            return wait
        if self._requests is not None:
            self._requests.take(1.0, now)
        if self._per_minute is not None:
            self._per_minute.take(1.0, now)
        if self._tokens is not None and tokens > 0:
            self._tokens.take(float(tokens), now)
        self._request_spend.record(1.0, now)
        if tokens > 0:
            self._token_spend.record(float(tokens), now)
        return 0.0

    def settle(self, reserved: int, used: int, now: float) -> None:
        if used != reserved:
            self._token_spend.record(float(used - reserved), now)
        if self._tokens is None or used == reserved:
            return
        if used < reserved:
            self._tokens.give_back(float(reserved - used), now)
            self._notify()
        else:
            self._tokens.take(float(used - reserved), now)

    def refund(self, reserved: int, now: float) -> None:
        self._request_spend.record(-1.0, now)
        if reserved > 0:
            self._token_spend.record(-float(reserved), now)
        if self._requests is not None:
            self._requests.give_back(1.0, now)
        if self._per_minute is not None:
            self._per_minute.give_back(1.0, now)
        if self._tokens is not None and reserved > 0:
            self._tokens.give_back(float(reserved), now)
        self._notify()

    def pause_until(self, deadline: float, now: float, reason: str) -> None:
        if deadline > self._paused_until:
            self._paused_until = deadline
            self._last_reason = reason

    def observe_headers(self, headers: RateLimitHeaders, now: float) -> None:
        limits = stated_limits(headers, self.requests_per_second, self.tokens_per_minute)
        if limits is not None:
            rps, tpm = limits
            self.set_limits(
                requests_per_second=rps, tokens_per_minute=tpm, now=now, reason="headers"
            )
        if headers.requests_remaining is None and headers.tokens_remaining is None:
            return
        counted_at = now if headers.counted_at is None else min(headers.counted_at, now)
        if headers.counted_at is not None:
            # Answers overtake each other: a count from an earlier send says less than one
            # already applied from a later send (an old "none remain" is long refilled).
            if counted_at < self._freshest_count:
                return
            self._freshest_count = counted_at
        for bucket, spend, remaining, reset in (
            (
                self._requests,
                self._request_spend,
                headers.requests_remaining,
                headers.requests_reset,
            ),
            (self._tokens, self._token_spend, headers.tokens_remaining, headers.tokens_reset),
        ):
            self._sync(bucket, spend, remaining, reset, counted_at, now)

    def _sync(
        self,
        bucket: Bucket | None,
        spend: SpendLedger,
        remaining: float | None,
        reset: float | None,
        counted_at: float,
        now: float,
    ) -> None:
        """Apply one dimension's count, aged from ``counted_at`` to ``now``.

        The server counted at the send: since then it has refilled ``rate * age`` and admitted
        what we sent after it, so that is what it holds now (a reset ``age`` nearer).
        """
        rule = resync(remaining, reset, rate_known=bucket is not None)
        age = now - counted_at
        if rule.pause is not None:
            if rule.pause > age:
                self.pause_until(counted_at + rule.pause, now, NONE_REMAIN_REASON)
        elif rule.clamp is not None and bucket is not None:
            spent = spend.spent_after(counted_at)
            if spent is not None:
                bucket.clamp(rule.clamp + age * bucket.rate - spent, now)

    def state(self, now: float) -> LimiterState:
        return LimiterState(
            requests_per_second=self.requests_per_second,
            tokens_per_minute=self.tokens_per_minute,
            requests_available=self._requests.level(now) if self._requests else None,
            tokens_available=self._tokens.level(now) if self._tokens else None,
            paused_for=max(0.0, self._paused_until - now),
            last_change_reason=self._last_reason,
        )

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return (
            f"LocalLimiter(requests_per_second={self.requests_per_second}, "
            f"tokens_per_minute={self.tokens_per_minute}, requests={self._requests!r}, "
            f"tokens={self._tokens!r})"
        )
