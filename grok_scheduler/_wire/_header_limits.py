"""The limits a response's headers state, with each window read from the evidence.

``x-ratelimit-limit-requests: 20`` means 20 per second on one server and 20 per minute on the
next; the triple (limit, remaining, reset) and the client's own count say which
(``_windows.py``). Only readings worth trusting become stated limits: a window the family
states, or one read from the refill and snapped to a standard window. A window merely assumed
(OpenAI's per-minute convention, a fixed window guessed from the reset) states nothing; the
``remaining``/``reset`` synchronisation and the 429s handle such servers instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._limits._base import RateLimitHeaders
from ._windows import ClientCount, HeaderTriple, window_candidates

__all__ = ["HeaderLimits", "header_limits"]

# Readings at or above this confidence are a stated window or a refill snapped to one.
_TRUSTED = 0.6


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """Requests per second and tokens per minute the headers state (None: not stated)."""

    requests_per_second: float | None
    tokens_per_minute: float | None


def header_limits(
    headers: RateLimitHeaders,
    *,
    requests_seen: ClientCount | None = None,
    tokens_seen: ClientCount | None = None,
) -> HeaderLimits:
    """Read each dimension's triple together; keep only readings worth trusting."""
    requests = _rate_per_second(
        headers.requests_limit,
        headers.requests_remaining,
        headers.requests_reset,
        headers.requests_window,
        requests_seen,
    )
    tokens = _rate_per_second(
        headers.tokens_limit,
        headers.tokens_remaining,
        headers.tokens_reset,
        headers.tokens_window,
        tokens_seen,
    )
    return HeaderLimits(requests, None if tokens is None else tokens * 60.0)


def _rate_per_second(
    limit: float | None,
    remaining: float | None,
    reset: float | None,
    window: float | None,
    seen: ClientCount | None,
) -> float | None:
    if limit is None:
        return None
    triple = HeaderTriple(limit=limit, remaining=remaining, reset=reset, stated_window=window)
    candidates = window_candidates(triple, seen=seen)
    if not candidates or candidates[0].confidence < _TRUSTED:
        return None
    return candidates[0].rate_per_second
