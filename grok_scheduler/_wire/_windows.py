"""Deriving the window of a rate-limit header's ``limit`` from evidence, instead of assuming it.

A header triple (``limit``, ``remaining``, ``reset``) says a limit, not its window: OpenAI
counts per minute, other OpenAI-compatible servers per second, Groq's request limit per day. A
client that assumes one window paces 60x too slow or too fast on the next server. So the window
is read, in this order of trust:

1. **Stated.** A family that states its window (IETF ``w=60``, ``100;w=60``, ``limit=100, 60s``)
   wins outright: :func:`parse_stated_window` reads those forms.
2. **Refill, from the triple.** Servers of the OpenAI kind refill continuously and ``reset`` is
   the time until the bucket is full again. ``limit - remaining`` are used and come back in
   ``reset`` seconds, so the refill is ``(limit - remaining) / reset`` per second and the window
   is ``limit * reset / (limit - remaining)``, snapped to 1 s, 1 min, 1 h or 1 day when close:

   - ``x-ratelimit-limit-requests: 20``, ``remaining: 19``, ``reset: 50ms`` after 20 requests
     were accepted in one second: one request comes back in 50 ms, 20 per second, a window of
     ``20 * 0.05 / 1 = 1 s``. Per minute would have left about 0 remaining after those 20, not
     19, so the client's own count rules per minute out.
   - OpenAI ``limit-requests: 500``, ``remaining: 499``, ``reset: 120ms``: one request per
     ``60 / 500 = 0.12 s``, a window of ``500 * 0.12 / 1 = 60 s``: 500 per minute.
   - Groq ``limit-requests: 14400``, ``remaining: 14370``, ``reset: 2m59.56s``: 30 come back in
     179.56 s, a window of ``14400 * 179.56 / 30 = 86189 s``: per day, 14400 / 86400 per second.
3. **Fixed window, from the reset.** Servers that reset the whole count at a window's end
   (``X-RateLimit-Reset`` as GitHub sends it) make the refill reading meaningless, but a reset
   is never longer than its window: the smallest standard window at least as long as ``reset``
   (a reset in hours reads as per day).
4. **Convention.** OpenAI's per minute, only when nothing above contradicts it: a reset longer
   than a minute does, and so does a count of what the client itself got accepted (k accepted in
   the last T seconds leave at most ``limit - (k - limit * T / window)`` remaining; a server
   reporting more remaining than that has a shorter window). Other clients on the same key only
   lower ``remaining``, so this test never rejects the true window because of them.

:func:`window_candidates` returns every reading of one triple that survives, each with a
confidence and a reason, best first; ``_window_series.settle_window`` settles on one window from
observations over time. Everything here is pure, never raises on finite or non-finite
numbers, and returns only positive, finite windows and rates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._headers import parse_go_duration

__all__ = [
    "STANDARD_WINDOWS",
    "ClientCount",
    "HeaderTriple",
    "WindowCandidate",
    "parse_stated_window",
    "window_candidates",
]

STANDARD_WINDOWS: tuple[float, ...] = (1.0, 60.0, 3600.0, 86400.0)
"""The windows servers use: a second, a minute, an hour, a day."""

# Standard windows are at least 24x apart, so a reading within 2x of one can only mean that one;
# within 1.25x it is as close as rounded resets and integer remaining counts allow.
_SNAP_LOOSE = 2.0
_SNAP_TIGHT = 1.25
# Resets and counts are rounded by servers: comparisons allow this much before contradicting.
_TOLERANCE = 1.05
_CONVENTION = 60.0

_STATED = 1.0
_REFILL_TIGHT = 0.8
_REFILL_LOOSE = 0.6
_FIXED = 0.35
_REFILL_RAW = 0.3
_CONVENTIONAL = 0.2


@dataclass(frozen=True, slots=True)
class HeaderTriple:
    """One dimension's headers as read: limit, remaining, seconds until reset, stated window."""

    limit: float | None
    remaining: float | None = None
    reset: float | None = None
    stated_window: float | None = None
    """The window the header family states (IETF ``w=``), None when it states none."""


@dataclass(frozen=True, slots=True)
class ClientCount:
    """What the client itself saw: ``accepted`` requests (or tokens) in the last ``within`` s."""

    accepted: float
    within: float


@dataclass(frozen=True, slots=True)
class WindowCandidate:
    """One reading of a limit's window, with how much to trust it and why."""

    window: float
    """Seconds over which ``limit`` refills completely."""
    rate_per_second: float
    """``limit / window``: the pace the server allows."""
    confidence: float
    """From 0 to 1: 1 stated, about 0.8 derived from a refill, 0.2 the per-minute convention."""
    reason: str


# --------------------------------------------------------------------------- one triple


def window_candidates(
    triple: HeaderTriple, *, seen: ClientCount | None = None
) -> tuple[WindowCandidate, ...]:
    """Every window one triple allows, best first; empty when the limit is unusable.

    A stated window is returned alone. Otherwise the refill reading, the fixed-window reading and
    the per-minute convention are offered, minus any that the reset or ``seen`` contradicts.
    """
    limit = _positive(triple.limit)
    if limit is None:
        return ()
    stated = _positive(triple.stated_window)
    if stated is not None:
        candidate = _candidate(limit, stated, _STATED, "stated by the header family")
        return () if candidate is None else (candidate,)
    remaining = _remaining(triple.remaining, limit)
    reset = _non_negative(triple.reset)
    found: list[WindowCandidate | None] = []
    raw = _refill_window(limit, remaining, reset)
    if raw is not None:
        found.append(_refill_candidate(limit, [raw]))
    if reset is not None and reset > 0:
        found.append(_fixed_candidate(limit, reset))
    found.append(_candidate(limit, _CONVENTION, _CONVENTIONAL, "OpenAI's per-minute convention"))
    kept = [c for c in found if c is not None and _allowed(c, limit, remaining, reset, seen)]
    return _best_first(kept)


def _refill_window(limit: float, remaining: float | None, reset: float | None) -> float | None:
    """``limit * reset / used``: the window implied by ``used`` coming back in ``reset`` s."""
    if remaining is None or reset is None or reset <= 0:
        return None
    used = limit - remaining
    if used <= 0:
        return None
    return _positive(limit * reset / used)


def _refill_candidate(limit: float, estimates: Sequence[float]) -> WindowCandidate | None:
    center = _geometric_median(estimates)
    window, ratio = _snap(center)
    if ratio > _SNAP_LOOSE:
        return _candidate(limit, center, _REFILL_RAW, f"refill reading {center:.6g} s, unsnapped")
    agreeing = sum(1 for e in estimates if _ratio(e, window) <= _SNAP_TIGHT)
    base = _REFILL_TIGHT if ratio <= _SNAP_TIGHT else _REFILL_LOOSE
    confidence = min(0.95, base + 0.05 * max(0, agreeing - 1))
    reason = f"refill: used comes back at limit/{window:g} s ({len(estimates)} reading(s))"
    return _candidate(limit, window, confidence, reason)


def _fixed_candidate(
    limit: float, longest_reset: float, confidence: float = _FIXED
) -> WindowCandidate | None:
    window = next((w for w in STANDARD_WINDOWS if w * _TOLERANCE >= longest_reset), None)
    if window is None:
        return None
    reason = f"fixed window: the shortest standard window holding a {longest_reset:.6g} s reset"
    return _candidate(limit, window, confidence, reason)


def _allowed(
    candidate: WindowCandidate,
    limit: float,
    remaining: float | None,
    reset: float | None,
    seen: ClientCount | None,
) -> bool:
    """False when the reset or the client's own count contradicts this window."""
    window = candidate.window
    if reset is not None and reset > window * _TOLERANCE:
        return False
    if seen is None:
        return True
    accepted = _non_negative(seen.accepted)
    within = _positive(seen.within)
    if accepted is None or within is None:
        return True
    slack = max(1.0, 0.02 * limit)
    refilled = limit * within / window
    if accepted > limit + refilled + slack:
        return False
    still_used = max(0.0, accepted - refilled)
    return remaining is None or remaining <= limit - still_used + slack


# --------------------------------------------------------------------------- stated windows

_W_PARAM = re.compile(r"(?:^|[;,\s])w\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
_WINDOW_KEY = re.compile(r"\bwindow\s*[=:]\s*([0-9][0-9.a-zµμ]*)", re.IGNORECASE)
_TRAILING_DURATION = re.compile(
    r"[,;\s]\s*([0-9][0-9.]*(?:ns|us|µs|μs|ms|s|m|h)(?:[0-9.]+(?:ms|s|m))*)\s*$"
)
_PER_WORD = re.compile(r"(?:\bper\s+|/\s*)(second|sec|s|minute|min|m|hour|hr|h|day|d)\b", re.I)
_WORD_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_WORD_SECONDS |= {"h": 3600.0, "hr": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}


def parse_stated_window(text: str) -> float | None:
    """The window a header value states, in seconds, or None when it states none.

    Reads IETF ``w=60`` (``100;w=60``, ``"burst";q=100;w=60``), ``window=60s``, a trailing
    duration (``limit=100, 60s``, ``100, 1m``) and ``per minute`` / ``/min`` forms.
    """
    if not isinstance(text, str):
        return None
    text = text[:500]
    match = _W_PARAM.search(text)
    if match is not None:
        return _positive(_float(match.group(1)))
    for pattern in (_WINDOW_KEY, _TRAILING_DURATION):
        match = pattern.search(text)
        if match is not None:
            return _positive(parse_go_duration(match.group(1)))
    match = _PER_WORD.search(text)
    if match is not None:
        return _WORD_SECONDS[match.group(1).lower()]
    return None


# --------------------------------------------------------------------------- helpers


def _candidate(
    limit: float, window: float, confidence: float, reason: str
) -> WindowCandidate | None:
    rate = limit / window if window > 0 else math.inf
    if not (0.0 < rate < math.inf and 0.0 < window < math.inf):
        return None
    return WindowCandidate(
        window=window, rate_per_second=rate, confidence=confidence, reason=reason
    )


def _best_first(candidates: Iterable[WindowCandidate]) -> tuple[WindowCandidate, ...]:
    """One candidate per window (the most trusted, with every reason), most trusted first."""
    merged: dict[float, WindowCandidate] = {}
    for candidate in candidates:
        known = merged.get(candidate.window)
        if known is None:
            merged[candidate.window] = candidate
            continue
        best, other = (
            (known, candidate)
            if known.confidence >= candidate.confidence
            else (
                candidate,
                known,
            )
        )
        reason = f"{best.reason}; also {other.reason}"
        merged[candidate.window] = WindowCandidate(
            best.window, best.rate_per_second, best.confidence, reason
        )
    return tuple(sorted(merged.values(), key=lambda c: -c.confidence))


def _snap(window: float) -> tuple[float, float]:
    """The nearest standard window and how far off (a ratio, at least 1)."""
    nearest = min(STANDARD_WINDOWS, key=lambda w: _ratio(w, window))
    return nearest, _ratio(nearest, window)


def _ratio(a: float, b: float) -> float:
    return max(a / b, b / a)


def _geometric_median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return math.sqrt(ordered[middle - 1]) * math.sqrt(ordered[middle])


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _positive(value: float | None) -> float | None:
    if value is None or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < math.inf else None


def _non_negative(value: float | None) -> float | None:
    if value is None or not isinstance(value, int | float):
        return None
    return float(value) + 0.0 if 0 <= value < math.inf else None


def _remaining(value: float | None, limit: float) -> float | None:
    """A remaining count, or None when it is unreadable or more than the limit (malformed)."""
    remaining = _non_negative(value)
    return remaining if remaining is not None and remaining <= limit else None
