"""grok-scheduler: get LLM work through the xAI Grok API as fast as the provider allows.

Every public name is importable from here; the modules behind them are private.
"""

from __future__ import annotations

from ._clock import Clock, FakeClock, LoopClock
from ._core._map import Outcome, OutcomeStream
from ._core._retry import RetryPolicy
from ._core._scheduler import DEFAULT_BASE_URL, Scheduler
from ._core._stream import ResultStream, StreamChunk
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AttemptRecord,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    DeadlineExceededError,
    InternalServerError,
    InvalidJobError,
    LimiterError,
    ModelNotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestTooLargeError,
    SchedulerClosedError,
    SchedulerError,
    UnprocessableEntityError,
)
from ._guards._breaker import BreakerPolicy
from ._limits._adaptive import AdaptivePolicy
from ._limits._local import Limiter, LimiterState, LocalLimiter
from ._models import Endpoint, Priority, Result, Usage
from ._observe._alerts import Alert, AlertPolicy
from ._observe._metrics import render_metrics, start_metrics_server
from ._observe._stats import Histogram, LatencySummary, QueueLevel, SchedulerStatistics
from ._transports._aiohttp import AiohttpTransport
from ._transports._base import Transport, TransportResponse
from ._transports._mock import MockTransport
from ._transports._streaming import MockStream, MockStreamTransport, StreamingTransport
from ._wire._headers import RateLimitHeaders, parse_rate_limit_headers

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AdaptivePolicy",
    "AiohttpTransport",
    "Alert",
    "AlertPolicy",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BreakerPolicy",
    "BudgetExceededError",
    "Clock",
    "DEFAULT_BASE_URL",
    "DeadlineExceededError",
    "Endpoint",
    "FakeClock",
    "Histogram",
    "InternalServerError",
    "InvalidJobError",
    "LatencySummary",
    "Limiter",
    "LimiterError",
    "LimiterState",
    "LocalLimiter",
    "LoopClock",
    "MockStream",
    "MockStreamTransport",
    "MockTransport",
    "ModelNotAvailableError",
    "NotFoundError",
    "Outcome",
    "OutcomeStream",
    "PermissionDeniedError",
    "Priority",
    "QueueLevel",
    "QuotaExhaustedError",
    "RateLimitError",
    "RateLimitHeaders",
    "RequestTooLargeError",
    "Result",
    "ResultStream",
    "RetryPolicy",
    "Scheduler",
    "SchedulerClosedError",
    "SchedulerError",
    "SchedulerStatistics",
    "StreamChunk",
    "StreamingTransport",
    "Transport",
    "TransportResponse",
    "UnprocessableEntityError",
    "Usage",
    "parse_rate_limit_headers",
    "render_metrics",
    "start_metrics_server",
]

__version__ = "0.1.0"

# httpx is an optional extra (grok-scheduler[openai]): its adapter loads on first use only.
_LAZY = {"AsyncHTTPTransport", "async_http_client"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from ._adapters import _httpx

        return getattr(_httpx, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
