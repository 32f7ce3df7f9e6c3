"""Pure parsers for every rate-limit header family a response may carry.

xAI documents no rate-limit headers, but proxies, gateways and OpenAI-compatible servers send
them, so the scheduler reads whatever is present and learns nothing from what is absent.
Families, in order of precedence per dimension (requests, tokens):

1. OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as Go durations,
   both limits counted per minute.
2. IETF draft-ietf-httpapi-ratelimit-headers-11: ``RateLimit-Policy`` and ``RateLimit``
   structured-field lists, then the older draft's ``RateLimit-{Limit,Remaining,Reset}``.
3. Generic ``X-RateLimit-{Limit,Remaining,Reset}`` (requests; reset in seconds, or a Unix
   timestamp when large).

Plus ``retry-after-ms`` / ``retry-after`` and ``x-should-retry``. Every function here is pure,
never raises, and ignores any value it cannot read. Scalar values (numbers, Go durations,
dates) are read in ``_header_values``; the IETF structured fields in ``_ietf_ratelimit``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._limits._base import RateLimitHeaders
from ._header_values import http_date, non_negative, number, parse_go_duration, positive, until
from ._ietf_ratelimit import NONE_DIM, Dim, ietf_structured, sf_list

__all__ = [
    "RateLimitHeaders",
    "parse_go_duration",
    "parse_rate_limit_headers",
    "parse_retry_after",
    "parse_should_retry",
]


# The value the parsers fill in belongs to the credit layer (_limits/_base.py): the limiters
# consume it, and _limits must import nothing from the wire.
_EMPTY = RateLimitHeaders()

# OpenAI documents its request and token limits as per-minute budgets.
# A generic reset larger than this is a Unix timestamp (2001-09-09), not a delay in seconds.
_TIMESTAMP_THRESHOLD = 1e9
# Larger still is a millisecond timestamp: in seconds it would be beyond the year 5000.
_MS_TIMESTAMP_THRESHOLD = 1e11

# Header names this module reads; anything else is skipped with one set lookup.
_NAMES = frozenset(
    {
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "ratelimit-policy",
        "ratelimit",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
)
# Structured-field lists may be split over several field lines; RFC 9651 joins them with commas.
_LIST_NAMES = frozenset({"ratelimit-policy", "ratelimit"})


# --------------------------------------------------------------------------- public functions


def parse_retry_after(headers: Mapping[str, str], *, now_wall: float | None = None) -> float | None:
    """Seconds to wait before retrying: ``retry-after-ms`` first, then ``retry-after``.

    ``retry-after`` may be seconds or an HTTP-date (counted from ``now_wall``, the current Unix
    time, and clamped at 0). Large values are returned as they are; the caller decides.
    """
    return _retry_after(_collect(headers), now_wall)


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """The server's explicit ``x-should-retry`` verdict, or None when absent or unreadable."""
    return _should_retry(_collect(headers))


def parse_rate_limit_headers(
    headers: Mapping[str, str], *, now_wall: float | None = None
) -> RateLimitHeaders:
    """Everything the headers say about limits, merged across families by precedence.

    Per dimension and per field, OpenAI ``x-ratelimit-*`` wins over IETF ``RateLimit*``, which
    wins over generic ``X-RateLimit-*``; a limit always keeps the window of the family it came
    from. ``now_wall`` (default ``time.time()``) resolves HTTP-dates and Unix-timestamp resets.
    Returns one shared empty instance when nothing usable is present.
    """
    found = _collect(headers)
    if not found:
        return _EMPTY
    ietf_requests, ietf_tokens = ietf_structured(found)
    requests = _merge(
        _openai(found, "requests"),
        ietf_requests,
        _legacy(found, "ratelimit-", now_wall, timestamps=False),
        _legacy(found, "x-ratelimit-", now_wall, timestamps=True),
    )
    tokens = _merge(_openai(found, "tokens"), ietf_tokens)
    result = RateLimitHeaders(
        requests_limit=requests[0],
        requests_window=requests[1],
        requests_remaining=requests[2],
        requests_reset=requests[3],
        tokens_limit=tokens[0],
        tokens_window=tokens[1],
        tokens_remaining=tokens[2],
        tokens_reset=tokens[3],
        retry_after=_retry_after(found, now_wall),
        should_retry=_should_retry(found),
    )
    return _EMPTY if result == _EMPTY else result


# --------------------------------------------------------------------------- collection


def _collect(headers: Mapping[str, str]) -> dict[str, str]:
    """One pass over the headers: the interesting ones, lower-cased; the first value wins."""
    found: dict[str, str] = {}
    try:
        for key, value in headers.items():
            # Non-str entries break the Mapping[str, str] contract; skip them, do not crash.
            if not isinstance(key, str) or not isinstance(value, str):
                continue
            name = key.lower()
            if name not in _NAMES:
                continue
            if name not in found:
                found[name] = value
            elif name in _LIST_NAMES:
                found[name] = f"{found[name]}, {value}"
    except Exception:  # a broken Mapping must not break the response path
        return {}
    return found


# --------------------------------------------------------------------------- scalar verdicts


def _retry_after(found: Mapping[str, str], now_wall: float | None) -> float | None:
    text = found.get("retry-after-ms")
    if text is not None:
        ms = non_negative(number(text.strip()))
        if ms is not None:
            return ms / 1000.0
    text = found.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    seconds = number(text)
    if seconds is not None:
        return non_negative(seconds)
    timestamp = http_date(text)
    return None if timestamp is None else until(timestamp, now_wall)


def _should_retry(found: Mapping[str, str]) -> bool | None:
    text = found.get("x-should-retry")
    if text is None:
        return None
    verdict = text.strip().lower()
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return None


# --------------------------------------------------------------------------- families


def _merge(*dims: Dim) -> Dim:
    """First non-None per field; the window travels with the limit it belongs to."""
    limit = window = remaining = reset = None
    for dim_limit, dim_window, dim_remaining, dim_reset in dims:
        if limit is None and dim_limit is not None:
            limit, window = dim_limit, dim_window
        if remaining is None:
            remaining = dim_remaining
        if reset is None:
            reset = dim_reset
    return limit, window, remaining, reset


def _openai(found: Mapping[str, str], dimension: str) -> Dim:
    limit_text = found.get(f"x-ratelimit-limit-{dimension}")
    remaining_text = found.get(f"x-ratelimit-remaining-{dimension}")
    reset_text = found.get(f"x-ratelimit-reset-{dimension}")
    if limit_text is None and remaining_text is None and reset_text is None:
        return NONE_DIM
    limit = None if limit_text is None else positive(number(limit_text.strip()))
    return (
        limit,
        None,  # OpenAI-style headers do not say their window: it is read from the triple
        None if remaining_text is None else non_negative(number(remaining_text.strip())),
        None if reset_text is None else parse_go_duration(reset_text),
    )


def _legacy(
    found: Mapping[str, str], prefix: str, now_wall: float | None, *, timestamps: bool
) -> Dim:
    """``{prefix}limit/remaining/reset``: the older IETF draft, or the generic X- family."""
    limit_text = found.get(f"{prefix}limit")
    remaining_text = found.get(f"{prefix}remaining")
    reset_text = found.get(f"{prefix}reset")
    if limit_text is None and remaining_text is None and reset_text is None:
        return NONE_DIM
    limit, window = (None, None) if limit_text is None else _limit_and_window(limit_text)
    remaining = None if remaining_text is None else non_negative(number(remaining_text.strip()))
    reset = None if reset_text is None else _reset(reset_text, now_wall, timestamps=timestamps)
    return limit, window, remaining, reset


def _limit_and_window(text: str) -> tuple[float | None, float | None]:
    """A plain limit, or an early draft's ``10, 10;w=1, 50;w=60`` (limit, then its policies)."""
    if "," not in text and ";" not in text:
        return positive(number(text.strip())), None
    items = sf_list(text)
    if not items:
        return None, None
    limit = positive(number(items[0][0]))
    if limit is None:
        return None, None
    # The window is the one stated on the first policy whose quota equals the current limit.
    for name, params in items:
        if number(name) == limit and "w" in params:
            return limit, positive(number(params["w"]))
    return limit, None


def _reset(text: str, now_wall: float | None, *, timestamps: bool) -> float | None:
    text = text.strip()
    value = number(text)
    if value is None:
        return parse_go_duration(text)
    if value < 0:
        return None
    if timestamps and value > _MS_TIMESTAMP_THRESHOLD:
        return until(value / 1000.0, now_wall)
    if timestamps and value > _TIMESTAMP_THRESHOLD:
        return until(value, now_wall)
    return value + 0.0
