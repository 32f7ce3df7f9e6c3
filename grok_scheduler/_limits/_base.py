"""The credit interface: what every limiter is, what it is told, and the rules all of them share.

:class:`Limiter` is the protocol the scheduler talks to, implemented in this process by
:class:`~grok_scheduler.LocalLimiter` and across processes by
:class:`~grok_scheduler.distributed.RedisLimiter`. :class:`RateLimitHeaders` is the evidence
about the server's limits that the wire layer fills in from a response (the parsers live in
``_wire/_headers.py``; nothing here knows HTTP). The rules every limiter must apply the same way
are written once here: :func:`resync` (the server's remaining count wins; nothing remains means
pause until the reset) and :func:`stated_limits` (which limits a piece of evidence changes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "NONE_REMAIN_REASON",
    "TOKEN_WINDOW_SECONDS",
    "Limiter",
    "LimiterState",
    "RateLimitHeaders",
    "Resync",
    "resync",
    "FleetLog",
    "FRESH_COUNT_SECONDS",
    "without_stale_counts",
    "MinuteLimited",
    "stated_limits",
]

#: Tokens per minute are enforced over a minute, so a minute of tokens is the largest burst.
TOKEN_WINDOW_SECONDS = 60.0

#: The reason a limiter records when the server says nothing is left.
NONE_REMAIN_REASON = "server says none remain"


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What a response's headers say about the server's limits. None = not said."""

    requests_limit: float | None = None
    requests_remaining: float | None = None
    requests_reset: float | None = None
    requests_window: float | None = None
    tokens_limit: float | None = None
    tokens_remaining: float | None = None
    tokens_reset: float | None = None
    tokens_window: float | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    counted_at: float | None = None
    """When the server counted ``remaining`` (on the caller's clock; None: now).

    The server counts when it admits the call, and the answer may come seconds later: by then
    its bucket has refilled and the client has sent more. The call's send time is the closest
    moment the client knows of, so a limiter ages the counts from there (see
    :meth:`Limiter.observe_headers`)."""

    @property
    def requests_per_second(self) -> float | None:
        """The request limit as a rate, when both the limit and its window are known."""
        return _rate(self.requests_limit, self.requests_window, 1.0)

    @property
    def tokens_per_minute(self) -> float | None:
        """The token limit as a per-minute rate, when both the limit and its window are known."""
        return _rate(self.tokens_limit, self.tokens_window, 60.0)

    @property
    def is_empty(self) -> bool:
        """True when the headers said nothing at all about limits or retrying."""
        if self.counted_at is None:
            return self == _EMPTY
        return dataclasses.replace(self, counted_at=None) == _EMPTY


def _rate(limit: float | None, window: float | None, per: float) -> float | None:
    if limit is None or window is None or limit <= 0 or window <= 0:
        return None
    # Multiply first so that 150000 per 60 s comes back as exactly 150000 per minute.
    rate = limit * per / window
    # 1e308 per second overflows, 1e-300 per 1e300 s underflows: neither is a usable limit.
    return rate if 0.0 < rate < math.inf else None


_EMPTY = RateLimitHeaders()

#: Remaining counts older than this are dropped by a limiter that cannot age them.
FRESH_COUNT_SECONDS = 1.0


def without_stale_counts(headers: RateLimitHeaders, now: float) -> RateLimitHeaders:
    """``headers`` without its remaining counts when they were counted over a second ago.

    For a limiter that cannot age a count by what it sent since (the shared one clamps in
    Redis): after a long call the server has refilled and others have spent, so an old count
    read as the level now would stall the pool.
    """
    if headers.counted_at is None or now - headers.counted_at <= FRESH_COUNT_SECONDS:
        return headers
    return dataclasses.replace(
        headers,
        requests_remaining=None,
        requests_reset=None,
        tokens_remaining=None,
        tokens_reset=None,
    )


@dataclass(frozen=True, slots=True)
class LimiterState:
    """A snapshot of the limiter for statistics and logs."""

    requests_per_second: float | None
    tokens_per_minute: float | None
    requests_available: float | None
    tokens_available: float | None
    paused_for: float
    last_change_reason: str


@dataclass(frozen=True, slots=True)
class Resync:
    """What one dimension's remaining count asks of a limiter: at most one of the two is set.

    ``clamp``: lower the level to this much (never raise it). ``pause``: admit nothing for this
    many seconds.
    """

    clamp: float | None = None
    pause: float | None = None


def resync(remaining: float | None, reset: float | None, *, rate_known: bool) -> Resync:
    """The one rule for the server's remaining count of a dimension and its reset time.

    Another client may spend the same key, so the server's count wins when it is lower than
    ours. When nothing remains: with a known rate the level drops to zero and the next unit
    comes one refill step later (a token bucket's reset is its time until *full*, so waiting
    for it would idle the pool); with no rate known, every dispatch pauses until the reset (at
    most a minute: no window is longer), or the level drops to zero when no reset is given.
    """
    if remaining is None:
        return Resync()
    if remaining >= 1.0:
        return Resync(clamp=float(remaining))
    if reset is not None and reset > 0 and not rate_known:
        return Resync(pause=min(reset, TOKEN_WINDOW_SECONDS))
    return Resync(clamp=0.0)


def stated_limits(
    headers: RateLimitHeaders,
    requests_per_second: float | None,
    tokens_per_minute: float | None,
) -> tuple[float | None, float | None] | None:
    """The limits after the ones ``headers`` state, or None when they change nothing."""
    rps = headers.requests_per_second
    tpm = headers.tokens_per_minute
    new = (
        rps if rps is not None else requests_per_second,
        tpm if tpm is not None else tokens_per_minute,
    )
    return None if new == (requests_per_second, tokens_per_minute) else new


class Limiter(Protocol):
    """What the scheduler needs from a credit source (local or shared)."""

    @property
    def requests_per_second(self) -> float | None:
        """The request limit in force (None: unlimited)."""
        ...

    @property
    def tokens_per_minute(self) -> float | None:
        """The token limit in force (None: unlimited)."""
        ...

    @property
    def measures_acceptance(self) -> bool:
        """True when only this process spends this limiter's credit.

        Then what this process sees the server accept is everything the server accepted on the
        key, so the adaptive controller may cut a rate to the measured acceptance and grow from
        its own figure. A shared limiter (other processes spend the same key) says False: the
        controller then cuts multiplicatively from the shared rate and grows from the rate every
        process sees, so one process never overwrites another's cut.
        """
        ...

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        """Reserve one request and ``tokens``; return 0.0 on success, else seconds to wait.

        ``priority`` is the job's (lower is more urgent): a shared limiter uses it to keep
        capacity for urgent work of other processes; the local one needs no such hint because
        the scheduler's queue already asks for the most urgent job first.
        """
        ...

    def settle(self, reserved: int, used: int, now: float) -> None:
        """Correct a reservation to the tokens really used."""
        ...

    def refund(self, reserved: int, now: float) -> None:
        """Return a reservation that never reached the server (request and tokens)."""
        ...

    def pause_until(self, deadline: float, now: float, reason: str) -> None:
        """Admit nothing before ``deadline`` (a 429's wait applies to the whole pool)."""
        ...

    def observe_headers(self, headers: RateLimitHeaders, now: float) -> None:
        """Synchronise the levels with what the server says remains (see :func:`resync`).

        A dimension's remaining count lowers its level, never raises it; nothing remaining with
        a reset time pauses every dispatch until the reset. The counts describe the server at
        ``headers.counted_at``: a limiter ages them to ``now`` (refilled since, minus what it
        sent since) or drops them when old (:func:`without_stale_counts`), and never lets an
        older count override a fresher one. The scheduler passes the evidence
        with its stated limits removed: those go through the adaptive controller, which owns the
        rates and calls :meth:`set_limits`. A caller that hands a limiter stated limits directly
        gets them applied as ``set_limits(..., reason="headers")``.
        """
        ...

    def set_limits(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        now: float,
        reason: str,
    ) -> None:
        """Change both limits live (None: unlimited)."""
        ...

    def set_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever credit may have become available sooner."""
        ...

    def state(self, now: float) -> LimiterState:
        """A snapshot for statistics and logs."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (connections, background tasks)."""
        ...


@runtime_checkable
class FleetLog(Protocol):
    """Sends and refusals of every process sharing a limit (the Redis limiter keeps one)."""

    def record_sent(self, now: float) -> None: ...

    def record_rejected(self, sent_at: float, dimension: str) -> None: ...

    def fleet_acceptance(self, start: float, end: float) -> tuple[int, int] | None:
        """``(sent, refused)`` over the fleet for send times in ``[start, end)``."""
        ...

    def report_lag(self) -> float | None:
        """How many seconds behind now the fleet's counts may still be missing sends (None:
        not known; the meter then assumes the slowest reporting)."""
        ...


@runtime_checkable
class MinuteLimited(Protocol):
    """A limiter that can also hold a per-minute request bucket (stated by xAI's bodies)."""

    def set_requests_per_minute(self, requests_per_minute: float | None, now: float) -> None: ...
