"""A job that ended without a server answer, as the HTTP answer an SDK understands.

The httpx transport and the gateway hand SDKs the server's own last response. When there was
none (refused before sending, its deadline passed, the run stopped, the scheduler closed), the
SDK still needs a status to map to its exception: this module picks it and writes an xAI-shaped
body (``{"code", "error"}``). Connection failures are not answered here: the caller raises its
own connection error, so the SDK's ``APIConnectionError`` / ``APITimeoutError`` still apply.
"""

from __future__ import annotations

import json

from .._errors import (
    APIConnectionError,
    APIError,
    BudgetExceededError,
    DeadlineExceededError,
    InvalidJobError,
    RequestTooLargeError,
    SchedulerClosedError,
    SchedulerError,
    redact,
)

__all__ = ["error_answer", "error_body"]

# Statuses an SDK maps the way the user would expect: a refusal it could never send is a 4xx,
# an outcome of load or shutdown a 5xx.
_STATUSES: tuple[tuple[type[SchedulerError], int, str], ...] = (
    (RequestTooLargeError, 413, "request-too-large"),
    (InvalidJobError, 400, "invalid-argument"),
    (BudgetExceededError, 429, "budget-exceeded"),
    (DeadlineExceededError, 504, "deadline-exceeded"),
    (SchedulerClosedError, 503, "unavailable"),
)


def error_body(code: str | None, message: str) -> bytes:
    """An xAI-shaped error body, its message redacted."""
    body: dict[str, str] = {"error": redact(message)}
    if code is not None:
        body = {"code": code, **body}
    return json.dumps(body).encode()


def error_answer(error: SchedulerError) -> tuple[int, bytes] | None:
    """(status, body) for an error that came with no response; None for connection failures."""
    if isinstance(error, APIConnectionError):
        return None
    if isinstance(error, APIError):
        # A run stopped by a fatal answer refuses later calls with a copy whose cause is the
        # answer itself: its status is what the SDK must see (401 stays 401).
        cause = error.__cause__
        status = error.status_code
        if status is None and isinstance(cause, APIError):
            status = cause.status_code
        return (status or 500), error_body(error.code, error.message)
    for kind, status, code in _STATUSES:
        if isinstance(error, kind):
            return status, error_body(code, str(error))
    return 500, error_body("internal", str(error))
