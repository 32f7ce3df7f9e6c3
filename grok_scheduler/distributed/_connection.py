"""Key names and the Redis client: hash-tagged keys, redacted URLs, a lazily imported client."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["connect", "limiter_key", "redact", "redis_key"]


def limiter_key(api_key: str, model: str) -> str:
    """The Redis key for an API key and model: a digest, never the key itself.

    The braces are a Redis Cluster hash tag, so everything of one limiter lives on one node.
    """
    digest = hashlib.sha256(f"{api_key}\0{model}".encode()).hexdigest()[:16]
    return f"grok-scheduler:{{{digest}}}"


def redis_key(key: str) -> str:
    """The Redis key for a user's key name: kept if it has a hash tag, else wrapped in one."""
    if not key:
        raise ValueError("key must be a non-empty string")
    opening = key.find("{")
    if opening >= 0 and key.find("}", opening + 2) > opening:
        return key
    return f"grok-scheduler:{{{key}}}"


def redact(url: str) -> str:
    """The URL without its password (for repr and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def connect(url: str, timeout: float) -> tuple[Redis, tuple[type[BaseException], ...]]:
    """A fail-fast asyncio client and the exceptions that mean "Redis is in trouble"."""
    try:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
    except ImportError as exc:  # the extra is optional: say how to get it
        raise ImportError(
            "RedisLimiter needs the redis client: pip install grok-scheduler[redis]"
        ) from exc
    # Fail fast, never retry inside the client: the limiter has its own fallback and probe.
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    return client, (RedisError, OSError, TimeoutError)
