"""Rate-limit headers the simulator can send, one family per ``SimulatorConfig.headers`` mode.

Limits are the advertised ones (a neighbour's share is not subtracted); ``remaining`` and
``reset`` come from the real, shared buckets. In the window modes (``openai-60s``,
``openai-1s``, ``openai-day``) the triple of one dimension is written so that it adds up:

* ``limit`` = the advertised rate times the window (60 s, 1 s or 86 400 s);
* ``remaining`` = ``limit`` minus what the bucket is short of full (its *deficit*);
* ``reset`` = the deficit divided by the real refill rate: the time until full.

So ``(limit - remaining) / reset`` is the refill rate the client really gets, whatever the
window, which is exactly what a client reading the triple must work out. ``remaining`` cannot
go below zero; when a deficit exceeds the window's limit (a 1-second view of a minute-sized
token bucket) the triple understates the rate, as a real server's would.
"""

from __future__ import annotations

import math

from ._limits import Bucket, Rejection, ServerLimits

WINDOWS: dict[str, tuple[float, float]] = {
    # mode -> (window of the request limit, window of the token limit), in seconds
    "openai-60s": (60.0, 60.0),
    "openai-1s": (1.0, 1.0),
    "openai-day": (86_400.0, 60.0),
}


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String``: ``120ms``, ``1s``, ``6m0s``, ``1h2m3.5s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = round(seconds * 1000, 3)
        return f"{ms:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def number(value: float) -> str:
    """A count as a server writes it: ``120``, not ``120.0``; fractions stay (``0.5``)."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}"


def rate_limit_headers(
    mode: str, limits: ServerLimits, rejection: Rejection | None
) -> dict[str, str] | None:
    """The rate-limit headers of one response in the given family (``None`` for "none").

    Must be called right after ``try_admit`` so the buckets are refilled to the current time.
    """
    if mode == "none":
        return None
    if mode == "openai":
        headers = _openai_headers(limits)
    elif mode in WINDOWS:
        headers = _window_headers(limits, *WINDOWS[mode])
    elif mode == "ietf":
        headers = _ietf_headers(limits)
    else:
        headers = _generic_headers(limits)
    if rejection is not None:
        wait = rejection.retry_after if math.isfinite(rejection.retry_after) else 60.0
        headers["retry-after"] = _seconds(wait)
        if mode.startswith("openai"):
            headers["retry-after-ms"] = _seconds(wait * 1000)
    return headers


def _openai_headers(limits: ServerLimits) -> dict[str, str]:
    headers: dict[str, str] = {}
    requests, tokens = limits.requests, limits.tokens
    if requests is not None:
        headers["x-ratelimit-limit-requests"] = number(round(requests.limit * 60, 3))
        headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(requests.level)))
        headers["x-ratelimit-reset-requests"] = go_duration(requests.seconds_until_full())
    if tokens is not None:
        headers["x-ratelimit-limit-tokens"] = number(tokens.limit)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(tokens.level)))
        headers["x-ratelimit-reset-tokens"] = go_duration(tokens.seconds_until_full())
    return headers


def window_triple(bucket: Bucket, rate_per_second: float, window: float) -> tuple[str, str, str]:
    """``limit``, ``remaining``, ``reset`` of one bucket seen through a window of that length."""
    limit = round(rate_per_second * window, 3)
    deficit = max(0.0, bucket.capacity - bucket.level)
    remaining = max(0, math.floor(limit - deficit + 1e-9))
    return number(limit), str(remaining), go_duration(bucket.seconds_until_full())


def _window_headers(
    limits: ServerLimits, request_window: float, token_window: float
) -> dict[str, str]:
    headers: dict[str, str] = {}
    # The per-second bucket is the one that paces requests; a per-minute one speaks only
    # when it is the sole request limit.
    if limits.requests is not None:
        request_bucket: Bucket | None = limits.requests
        rate = limits.requests.limit
    elif limits.requests_per_minute is not None:
        request_bucket = limits.requests_per_minute
        rate = limits.requests_per_minute.limit / 60.0
    else:
        request_bucket = None
    if request_bucket is not None:
        limit, remaining, reset = window_triple(request_bucket, rate, request_window)
        headers["x-ratelimit-limit-requests"] = limit
        headers["x-ratelimit-remaining-requests"] = remaining
        headers["x-ratelimit-reset-requests"] = reset
    if limits.tokens is not None:
        tokens = limits.tokens
        limit, remaining, reset = window_triple(tokens, tokens.limit / 60.0, token_window)
        headers["x-ratelimit-limit-tokens"] = limit
        headers["x-ratelimit-remaining-tokens"] = remaining
        headers["x-ratelimit-reset-tokens"] = reset
    return headers


def _ietf_headers(limits: ServerLimits) -> dict[str, str]:
    policies: list[str] = []
    states: list[str] = []
    requests, per_minute, tokens = limits.requests, limits.requests_per_minute, limits.tokens
    if requests is not None:
        quota = max(1.0, requests.limit * limits.burst_seconds)
        policies.append(f'"requests";q={math.floor(quota)};w=1')
        states.append(_ietf_state("requests", requests))
    if per_minute is not None:
        policies.append(f'"requests-minute";q={math.floor(per_minute.limit)};w=60')
        states.append(_ietf_state("requests-minute", per_minute))
    if tokens is not None:
        policies.append(f'"tokens";q={math.floor(tokens.limit)};w=60;u="tokens"')
        states.append(_ietf_state("tokens", tokens))
    if not policies:
        return {}
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def _ietf_state(name: str, bucket: Bucket) -> str:
    remaining = max(0, math.floor(bucket.level))
    return f'"{name}";r={remaining};t={math.ceil(bucket.seconds_until_full())}'


def _generic_headers(limits: ServerLimits) -> dict[str, str]:
    requests = limits.requests
    if requests is None:
        return {}
    return {
        "X-RateLimit-Limit": str(math.floor(requests.capacity)),
        "X-RateLimit-Remaining": str(max(0, math.floor(requests.level))),
        "X-RateLimit-Reset": _seconds(requests.seconds_until_full()),
    }
