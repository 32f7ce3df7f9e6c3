"""Pure classification of failed API calls: which typed error, and whether to retry.

The rules follow the xAI error table (docs: xai-api.md): error bodies are flat
``{"code": <gRPC status text>, "error": <message>}``, a bad key is a 400, and billing exhaustion
is a 429 that must never be retried. OpenAI-shaped nested bodies, HTML from proxies and empty
bodies are understood too. Nothing here raises, whatever the input.

No HTTP client is imported here: a client's own exceptions are mapped where the client is
imported (the aiohttp transport), which builds its errors with :func:`connection_error`,
:func:`timeout_error` and :func:`carry` so that :func:`classify_exception` gives its verdict
back unchanged. Plain :class:`TimeoutError` and :class:`OSError` from simple transports are
classified here.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from .._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    ModelNotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    UnprocessableEntityError,
    redact,
)
from ._error_body import (
    MAX_BODY_BYTES,
    MAX_TEXT_REASON_CHARS,
    decode_body,
    parse_error_body,
    read_error,
)
from ._headers import parse_retry_after, parse_should_retry
from ._limit_bodies import StatedLimits, parse_limit_body
from ._response import read_request_id

__all__ = [
    "MAX_BODY_BYTES",
    "Verdict",
    "carry",
    "classify_exception",
    "classify_response",
    "connection_error",
    "describe_exception",
    "parse_error_body",
    "timeout_error",
]

LimitDimension = Literal["requests", "tokens"]

_BAD_KEY = re.compile(
    r"\b(incorrect|invalid|malformed|wrong)\s+(x-)?api[\s_-]?key"
    r"|\bapi[\s_-]?key\s+(provided\s+)?(is\s+)?(incorrect|invalid|malformed)\b",
    re.IGNORECASE,
)
# Billing exhaustion. "quota exceeded" alone also appears in per-minute rate limits of some
# gateways, so it counts only when the message does not talk about a time window.
_BILLING = re.compile(
    r"\bcredits?\b|spending[\s_-]?limit|\bbilling\b|insufficient[\s_-]?(quota|funds|balance)"
    r"|exceeded\s+your\s+(current\s+)?quota|payment\s+required|out\s+of\s+funds",
    re.IGNORECASE,
)
_QUOTA_EXCEEDED = re.compile(r"\bquota\s+(exceeded|exhausted)\b", re.IGNORECASE)
_WINDOWED = re.compile(r"\bper\s+(second|minute|min)\b|\brate\b|\brp[sm]\b|\btpm\b", re.IGNORECASE)
_CAPACITY = re.compile(r"at\s+capacity|overloaded|resource\s+has\s+been\s+exhausted", re.IGNORECASE)
_GRAMMAR = re.compile(r"grammar\s+is\s+too\s+complex", re.IGNORECASE)
_MODEL = re.compile(r"\bmodels?\b", re.IGNORECASE)
_TOO_MANY_REQUESTS = re.compile(r"too\s+many\s+requests", re.IGNORECASE)
_TOKENS = re.compile(r"\btokens?\b|\btpm\b|\bitpm\b|\botpm\b", re.IGNORECASE)
_REQUESTS = re.compile(r"\brequests\b|\brp[sm]\b|\brequests?\s+per\b", re.IGNORECASE)

_RETRYABLE_4XX = frozenset({408, 409})
_BAD_REQUEST_STATUSES = frozenset({400, 405, 413, 415})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do about one failed call."""

    error: APIError
    """The typed error: raised when fatal, or when retries run out."""
    retryable: bool
    retry_after: float | None
    """The server's requested wait in seconds (headers), None when it did not say."""
    limit_dimension: LimitDimension | None
    """Which limit a 429 hit, when the body or headers say."""
    is_rate_limit: bool
    """A 429 rate limit, which should slow the whole pool (not capacity, not a 5xx)."""
    stated: StatedLimits | None = None
    """The limits a rate-limit 429's body states (xAI names the model and each limit)."""


# --- responses --------------------------------------------------------------------------------


def _status_reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _header_dimension(headers: Mapping[str, str]) -> LimitDimension | None:
    """The dimension an OpenAI-style ``x-ratelimit-remaining-*`` header shows as used up."""
    for dimension in ("tokens", "requests"):
        value = headers.get(f"x-ratelimit-remaining-{dimension}")
        try:
            if value is not None and float(value) <= 0:
                return dimension
        except ValueError:
            continue
    return None


def _message_dimension(message: str) -> LimitDimension | None:
    """The dimension a rate-limit message names; the generic "Too Many Requests" names none."""
    message = _TOO_MANY_REQUESTS.sub(" ", message)
    if _TOKENS.search(message):
        return "tokens"
    if _REQUESTS.search(message):
        return "requests"
    return None


def _is_billing(text: str) -> bool:
    if _BILLING.search(text):
        return True
    return bool(_QUOTA_EXCEEDED.search(text)) and not _WINDOWED.search(text)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a response says, gathered once so the rules below stay small."""

    status: int
    code: str | None
    message: str
    body: object
    request_id: str | None
    retry_after: float | None
    said: str  # message and code together, for markers that may sit in either


def _make(cls: type[APIError], facts: _Facts) -> APIError:
    return cls(
        facts.message,
        status_code=facts.status,
        code=facts.code,
        request_id=facts.request_id,
        body=facts.body,
    )


def _typed_error(facts: _Facts) -> tuple[APIError, bool]:
    """The typed error for a response and whether its status alone makes it retryable."""
    status, said = facts.status, facts.said
    if status == 400 and _BAD_KEY.search(said):
        return _make(AuthenticationError, facts), False
    if status in (402, 403, 429) and _is_billing(said):
        return _make(QuotaExhaustedError, facts), False
    if status == 429 and (stated := parse_limit_body(facts.message)) and stated.model_unavailable:
        # "Requests per Minute (actual/limit): 0/0": the team may not use this model at all.
        return _make(ModelNotAvailableError, facts), False
    if status == 429:
        error = RateLimitError(
            facts.message,
            status_code=status,
            code=facts.code,
            request_id=facts.request_id,
            body=facts.body,
            retry_after=facts.retry_after,
        )
        return error, True
    return _error_for_status(facts)


def _error_for_status(facts: _Facts) -> tuple[APIError, bool]:
    """Errors decided by the status, with the message only for a few xAI exceptions."""
    status = facts.status
    if status in _BAD_REQUEST_STATUSES:
        return _make(BadRequestError, facts), False
    if status == 401:
        return _make(AuthenticationError, facts), False
    if status == 403:
        return _make(PermissionDeniedError, facts), False
    if status == 404:
        error = _make(NotFoundError, facts)
        # A missing model fails every job of the run; a missing file or batch fails only one.
        error.fails_every_job = bool(_MODEL.search(facts.said))
        return error, False
    if status == 422:
        return _make(UnprocessableEntityError, facts), bool(_CAPACITY.search(facts.said))
    if status >= 500:
        return _make(InternalServerError, facts), not _GRAMMAR.search(facts.said)
    return _make(APIStatusError, facts), status in _RETRYABLE_4XX


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; a plain dict from a caller is not."""
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:  # a broken mapping must not turn a failed call into a crash
        return {}


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request_id: str | None = None,
) -> Verdict:
    """Classify a non-2xx response into a typed error and a retry decision.

    ``x-should-retry`` overrides the status-based decision, except for a bad key or billing
    exhaustion, which are never retried.
    """
    lowered = _lower_keys(headers)
    text, parsed = decode_body(body)
    code, message = read_error(text, parsed)
    facts = _Facts(
        status=status,
        code=code,
        message=message or _status_reason(status),
        body=parsed if parsed is not None else (text or None),
        request_id=request_id or read_request_id(lowered),
        retry_after=parse_retry_after(headers),
        said=f"{message} {code or ''}",
    )
    error, retryable = _typed_error(facts)
    never_retry = isinstance(error, QuotaExhaustedError | AuthenticationError)
    should_retry = parse_should_retry(headers)
    if should_retry is not None and not never_retry:
        retryable = should_retry
    is_rate_limit = isinstance(error, RateLimitError) and not _CAPACITY.search(message)
    dimension = None
    stated = None
    if is_rate_limit:
        stated = parse_limit_body(facts.message)
        hit = stated.hit if stated is not None else None
        dimension = hit or _message_dimension(message) or _header_dimension(lowered)
    return Verdict(
        error=error,
        retryable=retryable,
        retry_after=facts.retry_after,
        limit_dimension=dimension,
        is_rate_limit=is_rate_limit,
        stated=stated,
    )


# --- exceptions -------------------------------------------------------------------------------

# The verdict a transport decided travels on its error under this name (a plain attribute, so it
# survives pickling like the rest of the error's state), never as a client library's type.
_CARRIED = "_grok_scheduler_verdict"


@dataclass(frozen=True, slots=True)
class _Carried:
    """A verdict without its error (the error holds this: no reference cycle)."""

    retryable: bool
    retry_after: float | None
    limit_dimension: LimitDimension | None
    is_rate_limit: bool


def describe_exception(exc: BaseException) -> str:
    """The exception's type name and its redacted, bounded text."""
    name = type(exc).__name__
    try:
        detail = redact(str(exc)).strip()
    except Exception:  # a broken __str__ must not hide the original failure
        detail = ""
    detail = detail[:MAX_TEXT_REASON_CHARS]
    return f"{name}: {detail}" if detail else name


def _quiet(error: APIError, *, retryable: bool) -> Verdict:
    return Verdict(
        error=error,
        retryable=retryable,
        retry_after=None,
        limit_dimension=None,
        is_rate_limit=False,
    )


def carry(verdict: Verdict) -> APIError:
    """The verdict's error, carrying the rest of the verdict for :func:`classify_exception`.

    A transport raises the result; classifying it later gives back this very verdict, so the
    transport decides retries for the exceptions only it knows.
    """
    carried = _Carried(
        verdict.retryable, verdict.retry_after, verdict.limit_dimension, verdict.is_rate_limit
    )
    setattr(verdict.error, _CARRIED, carried)
    return verdict.error


def connection_error(exc: BaseException, *, retryable: bool) -> APIConnectionError:
    """An :class:`APIConnectionError` naming ``exc`` (redacted), carrying ``retryable``."""
    error = APIConnectionError(describe_exception(exc))
    carry(_quiet(error, retryable=retryable))
    return error


def timeout_error(exc: BaseException) -> APITimeoutError:
    """A retryable :class:`APITimeoutError` naming ``exc`` (redacted)."""
    error = APITimeoutError(f"Request timed out ({describe_exception(exc)}).")
    carry(_quiet(error, retryable=True))
    return error


def _reclassify(exc: APIError) -> Verdict:
    """A verdict for an error that is already typed (e.g. raised by the transport)."""
    carried = getattr(exc, _CARRIED, None)
    if isinstance(carried, _Carried):
        return Verdict(
            error=exc,
            retryable=carried.retryable,
            retry_after=carried.retry_after,
            limit_dimension=carried.limit_dimension,
            is_rate_limit=carried.is_rate_limit,
        )
    if isinstance(exc, RateLimitError):
        return Verdict(
            error=exc,
            retryable=True,
            retry_after=exc.retry_after,
            limit_dimension=None,
            is_rate_limit=True,
        )
    retryable = isinstance(exc, APIConnectionError | InternalServerError) or (
        isinstance(exc, APIStatusError) and exc.status_code in _RETRYABLE_4XX
    )
    return _quiet(exc, retryable=retryable)


def classify_exception(exc: BaseException) -> Verdict:
    """Classify an exception raised while calling the API.

    An :class:`APIError` (what the aiohttp transport raises) keeps its identity and the verdict
    it carries, or gets one from its type. Otherwise: a timeout becomes a retryable
    :class:`APITimeoutError`; an OS-level connection failure a retryable
    :class:`APIConnectionError`; a certificate failure or anything else (a programming error) a
    fatal :class:`APIConnectionError`. The message names the exception's type; chaining the
    original as ``__cause__`` is the caller's job. Cancellation is classified as fatal but must
    be re-raised by the caller, never swallowed.
    """
    if isinstance(exc, APIError):
        return _reclassify(exc)
    message = describe_exception(exc)
    # A certificate that fails verification fails every retry the same way.
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _quiet(APIConnectionError(message), retryable=False)
    # asyncio.TimeoutError is TimeoutError since Python 3.11.
    if isinstance(exc, TimeoutError):
        return _quiet(APITimeoutError(f"Request timed out ({message})."), retryable=True)
    # Refused, reset, DNS (socket.gaierror) and TLS failures are all OSErrors.
    if isinstance(exc, OSError):
        return _quiet(APIConnectionError(message), retryable=True)
    return _quiet(APIConnectionError(message), retryable=False)
