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
never raises, and ignores any value it cannot read.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_tz

from .._limits._base import RateLimitHeaders

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
# Quota units that are neither requests nor tokens: such a policy says nothing about pacing.
_OTHER_UNITS = frozenset({"content-bytes", "concurrent-requests", "bytes"})

# "ms" before "m" and "us"/"µs"/"μs"/"ns" before "s", so the longest unit wins.
_GO_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"\+?(?:{_GO_PART})+", re.ASCII)
_GO_PARTS = re.compile(_GO_PART, re.ASCII)
_SF_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


# --------------------------------------------------------------------------- public functions


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration ("12ms", "6m0s", "1h2m3s", "250us"); a plain number is seconds.

    Returns None for anything else, for negative durations and for non-finite results.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text:
        return None
    if text[-1].isdigit() or text[-1] == ".":
        return _non_negative(_number(text))
    if _GO_DURATION.fullmatch(text) is None:
        return None
    total = 0.0
    for match in _GO_PARTS.finditer(text):
        total += float(match.group(1)) * _GO_UNIT_SECONDS[match.group(2)]
    return total if math.isfinite(total) else None


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
    ietf_requests, ietf_tokens = _ietf_structured(found)
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


# --------------------------------------------------------------------------- scalar values


def _number(text: str) -> float | None:
    """A finite float, or None. Underscores are refused: float() allows them, HTTP does not."""
    if "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _non_negative(value: float | None) -> float | None:
    # Adding 0.0 turns -0.0 into 0.0.
    return value + 0.0 if value is not None and value >= 0 else None


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _now(now_wall: float | None) -> float:
    return time.time() if now_wall is None else now_wall


def _until(timestamp: float, now_wall: float | None) -> float | None:
    """Seconds from now until a Unix timestamp, clamped at 0 (a past instant means now)."""
    delta = timestamp - _now(now_wall)
    if not math.isfinite(delta):
        return None
    return max(0.0, delta)


def _http_date(text: str) -> float | None:
    """The Unix time of an HTTP-date (RFC 9110 accepts three formats; email.utils reads all)."""
    try:
        parsed = parsedate_tz(text)
        if parsed is None:
            return None
        # HTTP-dates are always GMT; a missing zone must not fall back to local time.
        return float(calendar.timegm((*parsed[:6], 0, 0, 0)) - (parsed[9] or 0))
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def _retry_after(found: Mapping[str, str], now_wall: float | None) -> float | None:
    text = found.get("retry-after-ms")
    if text is not None:
        ms = _non_negative(_number(text.strip()))
        if ms is not None:
            return ms / 1000.0
    text = found.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    seconds = _number(text)
    if seconds is not None:
        return _non_negative(seconds)
    timestamp = _http_date(text)
    return None if timestamp is None else _until(timestamp, now_wall)


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

# (limit, window, remaining, reset); any may be None.
_Dim = tuple[float | None, float | None, float | None, float | None]
_NONE_DIM: _Dim = (None, None, None, None)


def _merge(*dims: _Dim) -> _Dim:
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


def _openai(found: Mapping[str, str], dimension: str) -> _Dim:
    limit_text = found.get(f"x-ratelimit-limit-{dimension}")
    remaining_text = found.get(f"x-ratelimit-remaining-{dimension}")
    reset_text = found.get(f"x-ratelimit-reset-{dimension}")
    if limit_text is None and remaining_text is None and reset_text is None:
        return _NONE_DIM
    limit = None if limit_text is None else _positive(_number(limit_text.strip()))
    return (
        limit,
        None,  # OpenAI-style headers do not say their window: it is read from the triple
        None if remaining_text is None else _non_negative(_number(remaining_text.strip())),
        None if reset_text is None else parse_go_duration(reset_text),
    )


def _legacy(
    found: Mapping[str, str], prefix: str, now_wall: float | None, *, timestamps: bool
) -> _Dim:
    """``{prefix}limit/remaining/reset``: the older IETF draft, or the generic X- family."""
    limit_text = found.get(f"{prefix}limit")
    remaining_text = found.get(f"{prefix}remaining")
    reset_text = found.get(f"{prefix}reset")
    if limit_text is None and remaining_text is None and reset_text is None:
        return _NONE_DIM
    limit, window = (None, None) if limit_text is None else _limit_and_window(limit_text)
    remaining = None if remaining_text is None else _non_negative(_number(remaining_text.strip()))
    reset = None if reset_text is None else _reset(reset_text, now_wall, timestamps=timestamps)
    return limit, window, remaining, reset


def _limit_and_window(text: str) -> tuple[float | None, float | None]:
    """A plain limit, or an early draft's ``10, 10;w=1, 50;w=60`` (limit, then its policies)."""
    if "," not in text and ";" not in text:
        return _positive(_number(text.strip())), None
    items = _sf_list(text)
    if not items:
        return None, None
    limit = _positive(_number(items[0][0]))
    if limit is None:
        return None, None
    # The window is the one stated on the first policy whose quota equals the current limit.
    for name, params in items:
        if _number(name) == limit and "w" in params:
            return limit, _positive(_number(params["w"]))
    return limit, None


def _reset(text: str, now_wall: float | None, *, timestamps: bool) -> float | None:
    text = text.strip()
    value = _number(text)
    if value is None:
        return parse_go_duration(text)
    if value < 0:
        return None
    if timestamps and value > _MS_TIMESTAMP_THRESHOLD:
        return _until(value / 1000.0, now_wall)
    if timestamps and value > _TIMESTAMP_THRESHOLD:
        return _until(value, now_wall)
    return value + 0.0


# --------------------------------------------------------------------------- IETF structured fields

_Item = tuple[str, dict[str, str]]


def _ietf_structured(found: Mapping[str, str]) -> tuple[_Dim, _Dim]:
    """Requests and tokens as said by ``RateLimit-Policy`` and ``RateLimit``."""
    policy_text = found.get("ratelimit-policy")
    current_text = found.get("ratelimit")
    if policy_text is None and current_text is None:
        return _NONE_DIM, _NONE_DIM
    request_policies: list[tuple[str, float, float | None]] = []
    token_policies: list[tuple[str, float, float | None]] = []
    for name, params in _sf_list(policy_text) if policy_text is not None else []:
        # Early drafts wrote the quota as the bare item itself: ``100;w=60``.
        quota = _positive(_number(params.get("q", name)))
        if quota is None:
            continue
        window = _positive(_number(params.get("w", "")))
        unit = (params.get("qu") or params.get("u") or "").lower()
        if "token" in unit or "token" in name.lower():
            token_policies.append((name, quota, window))
        elif unit not in _OTHER_UNITS:
            request_policies.append((name, quota, window))
    current = _sf_list(current_text) if current_text is not None else []
    token_names = {name for name, _, _ in token_policies}
    request_current = [item for item in current if not _is_token_item(item[0], token_names)]
    token_current = [item for item in current if _is_token_item(item[0], token_names)]
    return (
        _ietf_dimension(request_policies, request_current, fallback_first=True),
        _ietf_dimension(token_policies, token_current, fallback_first=False),
    )


def _is_token_item(name: str, token_names: set[str]) -> bool:
    return name in token_names or "token" in name.lower()


def _ietf_dimension(
    policies: list[tuple[str, float, float | None]], current: list[_Item], *, fallback_first: bool
) -> _Dim:
    limit = window = None
    policy_name: str | None = None
    if policies:
        # The shortest window binds pacing hardest; a policy without a window sorts last.
        policy_name, limit, window = min(
            policies, key=lambda p: (p[2] is None, p[2] if p[2] is not None else 0.0)
        )
    item = next((it for it in current if it[0] == policy_name), None)
    if item is None and current and (fallback_first or policy_name is None):
        item = current[0]
    if item is None:
        return limit, window, None, None
    params = item[1]
    remaining = _non_negative(_number(params["r"])) if "r" in params else None
    reset = _non_negative(_number(params["t"])) if "t" in params else None
    return limit, window, remaining, reset


def _sf_list(text: str) -> list[_Item]:
    """A lenient RFC 9651 list: each item's bare value (unquoted) and its parameters.

    Malformed members are skipped rather than failing the whole field, because one odd item
    from a gateway should not hide the rest.
    """
    items: list[_Item] = []
    for member in _split(text, ","):
        parts = _split(member, ";")
        name = _sf_value(parts[0].strip())
        if not name:
            continue
        params: dict[str, str] = {}
        for part in parts[1:]:
            key, equals, value = part.partition("=")
            key = key.strip().lower()
            if key and equals:
                params.setdefault(key, _sf_value(value.strip()))
        items.append((name, params))
    return items


def _sf_value(text: str) -> str:
    """A bare item as text: strings unquoted and unescaped, anything else as written."""
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            return ""
        inner = text[1:-1]
        return _SF_ESCAPE.sub(r"\1", inner) if "\\" in inner else inner
    return text


def _split(text: str, separator: str) -> list[str]:
    """Split on a separator outside double-quoted strings."""
    if '"' not in text:
        return text.split(separator)
    parts: list[str] = []
    start = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        elif char == separator and not in_string:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts
