"""How failed jobs are retried: the policy and the pure backoff arithmetic.

Retries are not sleeps: a failed job goes back into the queue with a not-before time and passes
through the limiter again, so no worker waits out a backoff and no retry bypasses the limits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["RetryPolicy", "backoff_delay", "retry_after_delay"]


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
