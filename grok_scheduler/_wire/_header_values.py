"""Scalar header values: numbers, Go durations, HTTP-dates and Unix-timestamp resets.

The building blocks every rate-limit header family shares. Every function here is pure,
never raises, and returns None for any value it cannot read.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from email.utils import parsedate_tz

__all__ = [
    "http_date",
    "non_negative",
    "number",
    "parse_go_duration",
    "positive",
    "until",
]

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
        return non_negative(number(text))
    if _GO_DURATION.fullmatch(text) is None:
        return None
    total = 0.0
    for match in _GO_PARTS.finditer(text):
        total += float(match.group(1)) * _GO_UNIT_SECONDS[match.group(2)]
    return total if math.isfinite(total) else None


def number(text: str) -> float | None:
    """A finite float, or None. Underscores are refused: float() allows them, HTTP does not."""
    if "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def non_negative(value: float | None) -> float | None:
    """The value when it is zero or more, else None."""
    # Adding 0.0 turns -0.0 into 0.0.
    return value + 0.0 if value is not None and value >= 0 else None


def positive(value: float | None) -> float | None:
    """The value when it is above zero, else None."""
    return value if value is not None and value > 0 else None


def until(timestamp: float, now_wall: float | None) -> float | None:
    """Seconds from now until a Unix timestamp, clamped at 0 (a past instant means now)."""
    delta = timestamp - (time.time() if now_wall is None else now_wall)
    if not math.isfinite(delta):
        return None
    return max(0.0, delta)


def http_date(text: str) -> float | None:
    """The Unix time of an HTTP-date (RFC 9110 accepts three formats; email.utils reads all)."""
    try:
        parsed = parsedate_tz(text)
        if parsed is None:
            return None
        # HTTP-dates are always GMT; a missing zone must not fall back to local time.
        return float(calendar.timegm((*parsed[:6], 0, 0, 0)) - (parsed[9] or 0))
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
