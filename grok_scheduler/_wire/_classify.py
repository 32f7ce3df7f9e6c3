"""Pure classification of failed API calls: which typed error, and whether to retry.

The rules follow the xAI error table (docs: xai-api.md): error bodies are flat
``{"code": <gRPC status text>, "error": <message>}``, a bad key is a 400, and billing exhaustion
is a 429 that must never be retried. OpenAI-shaped nested bodies, HTML from proxies and empty
bodies are understood too. Nothing here raises, whatever the input.
"""

from __future__ import annotations

import html
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

import aiohttp

from .._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    UnprocessableEntityError,
    redact,
)
from ._headers import parse_retry_after, parse_should_retry

__all__ = ["Verdict", "classify_exception", "classify_response", "parse_error_body"]

LimitDimension = Literal["requests", "tokens"]

MAX_BODY_BYTES = 64 * 1024
"""How much of a response body is decoded and kept; an error body is never legitimately bigger."""

_MAX_MESSAGE_CHARS = 1000
_MAX_TEXT_REASON_CHARS = 200

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
_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")

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


# --- bodies -----------------------------------------------------------------------------------


def _as_bytes(body: object) -> bytes:
    """Accept what callers actually pass (bytes-like, str, None) without ever raising."""
    if isinstance(body, bytes):
        return body[:MAX_BODY_BYTES]
    if isinstance(body, bytearray | memoryview):
        return bytes(body[:MAX_BODY_BYTES])
    if isinstance(body, str):
        return body[:MAX_BODY_BYTES].encode("utf-8", "replace")
    return b""


def _decode(body: object) -> tuple[str, object]:
    """Return (capped, redacted text, parsed JSON or None) of a response body."""
    text = redact(_as_bytes(body).decode("utf-8", "replace"))
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return text, None
    try:
        return text, json.loads(stripped)
    except (ValueError, RecursionError):
        return text, None


def _short(value: object, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """A message string from any JSON value, bounded in length."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = repr(type(value))
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_text(value: object) -> str | None:
    """A code field as text; JSON null or an empty string means no code."""
    if value is None or value == "":
        return None
    return _short(value, 200)


def _from_json(parsed: object) -> tuple[str | None, str] | None:
    """(code, message) from the JSON shapes seen in the wild, or None when unrecognised."""
    if not isinstance(parsed, dict):
        return None if parsed is None else (None, _short(parsed))
    error = parsed.get("error")
    if isinstance(error, dict):  # OpenAI: {"error": {"message", "type", "code"}}
        code = _code_text(error.get("code")) or _code_text(error.get("type"))
        message = error.get("message")
        return code, _short(message if message is not None else error)
    code = _code_text(parsed.get("code"))
    for key in ("error", "message", "detail", "msg"):
        value = parsed.get(key)
        if value is not None and value != "":
            return code, _short(value)
    return code, _short(parsed) if parsed else ""


def _text_reason(text: str) -> str:
    """A short reason from a non-JSON body: HTML without tags, whitespace collapsed."""
    text = _SCRIPT.sub(" ", text)
    text = html.unescape(_TAG.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    return text[:_MAX_TEXT_REASON_CHARS]


def _parse(text: str, parsed: object) -> tuple[str | None, str]:
    found = _from_json(parsed)
    if found is not None:
        return found[0], redact(found[1])
    return None, redact(_text_reason(text))


def parse_error_body(body: bytes) -> tuple[str | None, str]:
    """Return ``(code, message)`` from an error body.

    Understands xAI's flat ``{"code", "error"}``, ``{"error": "..."}``, OpenAI's nested
    ``{"error": {"message", "type", "code"}}``; for HTML or plain text the message is the first
    200 characters of text without tags. The message is ``""`` when the body says nothing, and is
    always redacted.
    """
    text, parsed = _decode(body)
    return _parse(text, parsed)


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


def _request_id(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-request-id") or headers.get("request-id")
    return redact(value)[:200] if value else None


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
    text, parsed = _decode(body)
    code, message = _parse(text, parsed)
    facts = _Facts(
        status=status,
        code=code,
        message=message or _status_reason(status),
        body=parsed if parsed is not None else (text or None),
        request_id=request_id or _request_id(lowered),
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
    if is_rate_limit:
        dimension = _message_dimension(message) or _header_dimension(lowered)
    return Verdict(
        error=error,
        retryable=retryable,
        retry_after=facts.retry_after,
        limit_dimension=dimension,
        is_rate_limit=is_rate_limit,
    )


# --- exceptions -------------------------------------------------------------------------------

# Raised for a request that can never succeed as written: retrying only repeats the failure.
_FATAL_CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.InvalidURL,
    aiohttp.TooManyRedirects,
    aiohttp.ClientConnectorCertificateError,
    ssl.SSLCertVerificationError,
)
# asyncio.TimeoutError is TimeoutError since Python 3.11; aiohttp's is a subclass of it.
_TIMEOUTS: tuple[type[BaseException], ...] = (TimeoutError, aiohttp.ServerTimeoutError)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    ConnectionError,
    OSError,
)


def _describe(exc: BaseException) -> str:
    """The exception's type name and its redacted, bounded text."""
    name = type(exc).__name__
    try:
        detail = redact(str(exc)).strip()
    except Exception:  # a broken __str__ must not hide the original failure
        detail = ""
    detail = detail[:_MAX_TEXT_REASON_CHARS]
    return f"{name}: {detail}" if detail else name


def _quiet(error: APIError, *, retryable: bool) -> Verdict:
    return Verdict(
        error=error,
        retryable=retryable,
        retry_after=None,
        limit_dimension=None,
        is_rate_limit=False,
    )


def _reclassify(exc: APIError) -> Verdict:
    """A verdict for an error that is already typed (e.g. raised by the transport)."""
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


def _from_response_error(exc: aiohttp.ClientResponseError) -> Verdict:
    """``raise_for_status()`` errors carry a status; classify them like the response."""
    if isinstance(exc, aiohttp.ContentTypeError) or exc.status < 400:
        return _quiet(
            APIResponseValidationError(_describe(exc), status_code=exc.status), retryable=False
        )
    headers: Mapping[str, str] = exc.headers if exc.headers is not None else {}
    return classify_response(exc.status, headers, exc.message.encode("utf-8", "replace"))


def classify_exception(exc: BaseException) -> Verdict:
    """Classify an exception raised while calling the API.

    Timeouts become a retryable :class:`APITimeoutError`; connection-level failures a retryable
    :class:`APIConnectionError`; a bad URL, certificate failure or anything else (a programming
    error) a fatal :class:`APIConnectionError`. The message names the exception's type; chaining
    the original as ``__cause__`` is the caller's job. Cancellation is classified as fatal but
    must be re-raised by the caller, never swallowed.
    """
    if isinstance(exc, APIError):
        return _reclassify(exc)
    message = _describe(exc)
    if isinstance(exc, _FATAL_CLIENT_ERRORS):
        return _quiet(APIConnectionError(message), retryable=False)
    if isinstance(exc, _TIMEOUTS):
        return _quiet(APITimeoutError(f"Request timed out ({message})."), retryable=True)
    if isinstance(exc, aiohttp.ClientResponseError):
        return _from_response_error(exc)
    if isinstance(exc, _CONNECTION_ERRORS):
        return _quiet(APIConnectionError(message), retryable=True)
    return _quiet(APIConnectionError(message), retryable=False)
