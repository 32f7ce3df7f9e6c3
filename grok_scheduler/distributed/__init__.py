"""Rate limits shared by many processes and hosts through Redis (the ``redis`` extra).

``RedisLimiter`` implements :class:`~grok_scheduler.Limiter`; pass it to ``Scheduler(limiter=...)``
in every process that spends the same API key. The ``redis`` client is imported only when a
limiter is created, so this package imports fine without it.
"""

from __future__ import annotations

from ._connection import limiter_key
from ._fallback import FallbackPolicy
from ._limiter import DEFAULT_REDIS_URL, RedisLimiter

__all__ = ["DEFAULT_REDIS_URL", "FallbackPolicy", "RedisLimiter", "limiter_key"]
