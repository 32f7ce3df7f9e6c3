"""What a bulk run is wired to besides the API: the shared limiter and the metrics server.

Both are optional and imported lazily, so ``run`` without ``--redis-url`` or ``--metrics-port``
needs neither redis nor prometheus_client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .._core._scheduler import Scheduler
from .._errors import redact
from ._exit import UsageError
from ._options import RunOptions

__all__ = ["make_limiter", "start_metrics"]


def make_limiter(opts: RunOptions) -> Any:
    """The Redis limiter for ``--redis-url`` (None without it); a usage error when unusable."""
    if not opts.redis_url:
        return None
    try:
        module = importlib.import_module("grok_scheduler.distributed")
        factory = module.RedisLimiter.from_url
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            "--redis-url needs the shared limiter (grok_scheduler.distributed) and the "
            f"'redis' package (pip install 'grok-scheduler[redis]'): {redact(str(exc))}"
        ) from None
    def for_model(model: str) -> Any:
        # xAI limits each model on its own: one shared limiter per (key, model).
        return factory(
            opts.redis_url,
            api_key=opts.api_key,
            model=model,
            requests_per_second=opts.requests_per_second,
            tokens_per_minute=opts.tokens_per_minute,
        )

    try:
        first = for_model(opts.model)  # a bad URL is a usage error before anything is sent
    except ValueError as exc:
        raise UsageError(f"--redis-url: {redact(str(exc))}") from None
    return lambda model: first if model == opts.model else for_model(model)


def start_metrics(scheduler: Scheduler, port: int | None, warn: Callable[[str], None]) -> None:
    """Serve Prometheus metrics on ``port``; a warning (not a failure) when that cannot be."""
    if port is None:
        return
    try:
        module = importlib.import_module("grok_scheduler._observe._metrics")
    except ImportError as exc:
        warn(f"metrics are not available ({exc}); continuing without --metrics-port")
        return
    try:
        module.start_metrics_server(scheduler, port)
    except OSError as exc:
        warn(f"could not serve metrics on port {port} ({exc}); continuing")
