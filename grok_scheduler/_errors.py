"""The exceptions grok-scheduler raises.

Every error the library raises derives from :class:`SchedulerError`; every error about a call to
the API derives from :class:`APIError`, with the names users of openai-python already know::

    SchedulerError(Exception)
    ├── SchedulerClosedError              submit after close; job cancelled by aclose(cancel=True)
    ├── RequestTooLargeError              token estimate can never fit the token limit (not sent)
    ├── DeadlineExceededError             the job's own deadline passed before it succeeded
    ├── BudgetExceededError               a token/cost budget would be passed (not sent)
    ├── InvalidJobError(ValueError)       bad submit arguments
    └── APIError                          anything about a call to the API
        ├── APIConnectionError            connection refused/reset, DNS, TLS, ...
        │   └── APITimeoutError           the call's timeout passed
        ├── APIResponseValidationError    a 2xx whose body is not the JSON we need
        └── APIStatusError                any non-2xx status
            ├── BadRequestError           400 (and 405, 413, 415)
            ├── AuthenticationError       401, and xAI's 400 "Incorrect API key"  [every job]
            ├── PermissionDeniedError     403                                      [every job]
            ├── NotFoundError             404                        [every job, if the model]
            │   └── ModelNotAvailableError  429 stating 0/0: the team may not use the model
            ├── UnprocessableEntityError  422
            ├── RateLimitError            429, with .retry_after
            ├── QuotaExhaustedError       billing exhaustion (429/403/402)         [every job]
            └── InternalServerError       >= 500

``fails_every_job`` (marked "[every job]") marks errors that would fail every other job of the
run too (a bad key, no credits), so a scheduler can stop the run instead of burning the queue.

Messages never carry an API key: :func:`redact` masks anything that looks like one, and
classification applies it to every message taken from a response body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "DeadlineExceededError",
    "InternalServerError",
    "InvalidJobError",
    "LimiterError",
    "ModelNotAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RequestTooLargeError",
    "SchedulerClosedError",
    "SchedulerError",
    "UnprocessableEntityError",
    "redact",
]

# Each pattern keeps a recognisable prefix and masks the secret part. Token characters follow
# RFC 6750 (b64token), so a quote or brace after a token survives and JSON stays parseable.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bxai-[A-Za-z0-9_-]{8,}"), "xai-***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-***"),
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 ***"),
    # Credentials embedded in a URL (scheme://user:pass@host) or its query string.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@\"']+@", re.IGNORECASE), r"\1***@"),
    (
        re.compile(
            r"([?&](?:api[_-]?key|key|token|access_token|auth)=)[^&\s\"'#]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
)


# Every pattern above needs one of these in the text (compared lower-cased): text with none of
# them is returned as is, without five regex scans (tens of microseconds for each request id).
# A pattern added above must add what it needs here (tests/test_redact_fast_path.py compares).
_MARKERS = ("xai-", "sk-", "bearer", "://", "=")


def redact(text: str) -> str:
    """Return ``text`` with API keys, bearer tokens and URL credentials masked."""
    # Non-ASCII text takes the full road: IGNORECASE folds some non-ASCII letters to ASCII ones.
    if text.isascii():
        lowered = text.lower()
        if not any(marker in lowered for marker in _MARKERS):
            return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One failed attempt of a job, kept in :attr:`APIError.history`."""

    number: int
    status_code: int | None
    error_type: str
    message: str
    retry_after: float | None
    backoff: float | None


class SchedulerError(Exception):
    """Root of every exception this library raises."""

    partial_text: str = ""
    """For a streamed job that failed after its first chunk: the text the caller received."""


class SchedulerClosedError(SchedulerError):
    """The scheduler is closed: submit after close, or job cancelled by ``aclose(cancel=True)``."""


class RequestTooLargeError(SchedulerError):
    """A job whose token estimate can never fit the token limit; raised before sending."""


class DeadlineExceededError(SchedulerError):
    """A job's own deadline passed before it succeeded."""


class BudgetExceededError(SchedulerError):
    """Sending the job would pass a token or cost budget; raised before sending."""


class LimiterError(SchedulerError):
    """A model's limiter kept raising (a custom or shared limiter failing): that model's queued
    jobs fail with this, never sent; the limiter's own exception is the ``__cause__``."""


class InvalidJobError(SchedulerError, ValueError):
    """Bad submit arguments: empty prompt, bad priority, negative max_tokens, ..."""


class APIError(SchedulerError):
    """Anything about a call to the API.

    ``attempts`` and ``history`` are filled in by the scheduler once it gives up on a job.
    """

    fails_every_job: bool = False
    """True when this error would fail every other job of the run too (bad key, no credits)."""

    message: str
    status_code: int | None
    code: str | None
    request_id: str | None
    body: object
    attempts: int
    history: tuple[AttemptRecord, ...]

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.body = body
        self.attempts = 0
        self.history = ()

    def __str__(self) -> str:
        text = self.message
        if self.status_code is not None:
            text = f"Error code: {self.status_code} - {text}"
        if self.request_id:
            text = f"{text} (request id: {self.request_id})"
        return text

    # The default exception pickling calls cls(*args) and then restores __dict__; spelling it out
    # keeps keyword-only constructors (RateLimitError.retry_after) working for multiprocessing.
    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message), dict(self.__dict__))


def _rebuild(cls: type[APIError], message: str) -> APIError:
    """Recreate an :class:`APIError` when unpickling; its state is restored afterwards."""
    return cls(message)


class APIConnectionError(APIError):
    """The call did not get a response: connection refused/reset, DNS, TLS, ..."""


class APITimeoutError(APIConnectionError):
    """The call's timeout passed before a response arrived."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, code=code, request_id=request_id, body=body
        )


class APIResponseValidationError(APIError):
    """A 2xx response whose body is not the JSON we need (not JSON, no choices/output)."""


class APIStatusError(APIError):
    """The API answered with a non-2xx status."""


class BadRequestError(APIStatusError):
    """400 (also 405, 413, 415): the request itself is wrong and will not succeed if repeated."""


class AuthenticationError(APIStatusError):
    """401, or xAI's 400 "Incorrect API key": no request with this key can succeed."""

    fails_every_job = True


class PermissionDeniedError(APIStatusError):
    """403: the key or team may not do this (blocked key, no access)."""

    fails_every_job = True


class NotFoundError(APIStatusError):
    """404. ``fails_every_job`` is set on the instance when the missing thing is the model."""


class ModelNotAvailableError(NotFoundError):
    """The team may not use this model at all (xAI's 429 stating a limit of ``0/0``).

    Waiting cannot help, so it is never retried: the job fails, and so do the queued jobs of
    the same model; jobs of other models carry on.
    """


class UnprocessableEntityError(APIStatusError):
    """422: a field has the wrong format (xAI also uses 422 for transient capacity errors)."""


class RateLimitError(APIStatusError):
    """429 rate limit (or capacity). ``retry_after`` is the server's requested wait, if said."""

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        body: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, code=code, request_id=request_id, body=body
        )
        self.retry_after = retry_after


class QuotaExhaustedError(APIStatusError):
    """Billing exhaustion (no credits, spending limit reached): never retried."""

    fails_every_job = True


class InternalServerError(APIStatusError):
    """A 5xx status."""
