"""How failed jobs are retried: the policy, the pure backoff arithmetic, and its bounds.

Retries are not sleeps: a failed job goes back into the queue with a not-before time and passes
through the limiter again, so no worker waits out a backoff and no retry bypasses the limits.
Bounds beside the policy: a Retry-After above ``max_retry_after`` fails the job
(:func:`too_long_wait`), ``Retry-After: 0`` is honoured at once only once in a row
(:func:`said_now_again`), and connecting to a server that has never answered is retried only
a few seconds (:class:`Unreachable`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import APIConnectionError, APIError, APITimeoutError, AttemptRecord, RateLimitError

__all__ = [
    "UNREACHABLE_ATTEMPTS",
    "UNREACHABLE_SECONDS",
    "RetryPolicy",
    "Unreachable",
    "backoff_delay",
    "retry_after_delay",
    "said_now_again",
    "too_long_wait",
]

# Before the server has ever answered, connection failures (not timeouts) stop the run once
# there were at least this many, over at least this long: a blip at start-up is ridden out,
# a URL nothing listens on is reported within seconds.
UNREACHABLE_ATTEMPTS = 3
UNREACHABLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how often transient failures are retried.

    ``max_attempts`` counts every call including the first; ``total_timeout`` bounds the time from
    submit to the last retry (None: no bound); a server's Retry-After longer than
    ``max_retry_after`` fails the job with :class:`RateLimitError` instead of waiting.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_timeout: float | None = 900.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0")
        if self.total_timeout is not None and not self.total_timeout > 0:
            raise ValueError("total_timeout must be positive or None")


def backoff_delay(policy: RetryPolicy, failures: int, rng: random.Random) -> float:
    """Delay after the ``failures``-th failure: exponential, capped, with equal jitter.

    Half the delay is fixed so a retry never fires at once, half is random so that many jobs
    failing together do not come back in lockstep.
    """
    exponent = min(max(failures - 1, 0), 62)
    ceiling = min(policy.max_delay, policy.base_delay * (2.0**exponent))
    return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)


def retry_after_delay(retry_after: float, rng: random.Random) -> float:
    """Honour a server's wait exactly, never shorter, spreading retries just after it."""
    spread = min(1.0, 0.1 * retry_after) + 0.01
    return retry_after + rng.uniform(0.0, spread)


def too_long_wait(error: APIError, retry_after: float) -> RateLimitError:
    """The error for a server's wait longer than ``max_retry_after``: the job fails with it."""
    message = (
        f"the server asked to wait {retry_after:g}s, longer than max_retry_after: {error.message}"
    )
    return RateLimitError(
        message,
        status_code=error.status_code,
        code=error.code,
        request_id=error.request_id,
        body=error.body,
        retry_after=retry_after,
    )


def said_now_again(history: Sequence[AttemptRecord]) -> bool:
    """True when the previous attempt was answered with ``Retry-After: 0`` too.

    "Retry now" is honoured once; said again in a row, it is treated as naming no wait (normal
    backoff), so a server repeating it cannot drive a tight retry loop.
    """
    if not history:
        return False
    previous = history[-1].retry_after
    return previous is not None and previous <= 0.0


class Unreachable:
    """Counts connection failures until the server first answers; says when to give up.

    ``answered`` is set once any HTTP answer came back: from then on nothing is counted and
    connection failures are retried under the policy like any other.
    """

    __slots__ = ("answered", "failures", "since")

    def __init__(self) -> None:
        self.answered = False
        self.failures = 0
        self.since: float | None = None

    def __repr__(self) -> str:
        return (
            f"Unreachable(answered={self.answered}, failures={self.failures}, since={self.since})"
        )

    def failed(self, error: APIError, *, retryable: bool, now: float) -> APIConnectionError | None:
        """Record a failed call; the error that stops the run, once connecting is hopeless.

        Only retryable connection failures count (refused, DNS, TLS, reset): a timeout may be a
        slow server, and a failure that is never retried already fails its job at once.
        """
        if self.answered or not retryable or not isinstance(error, APIConnectionError):
            return None
        if isinstance(error, APITimeoutError):
            return None
        self.failures += 1
        if self.since is None:
            self.since = now
        waited = now - self.since
        if self.failures < UNREACHABLE_ATTEMPTS or waited < UNREACHABLE_SECONDS:
            return None
        stop = APIConnectionError(
            f"cannot connect to the server: {self.failures} attempts over {waited:.1f}s failed "
            f"and it never answered, so the run was stopped (last: {error.message})"
        )
        # Like a bad key, an address nothing answers on would fail every job of the run.
        stop.fails_every_job = True
        stop.__cause__ = error
        return stop
