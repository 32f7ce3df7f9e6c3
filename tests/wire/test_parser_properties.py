"""Property tests of the wire layer: header parsers and response classification never raise."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from grok_scheduler import RateLimitHeaders
from grok_scheduler._wire._classify import classify_response
from grok_scheduler._wire._headers import (
    parse_go_duration,
    parse_rate_limit_headers,
    parse_retry_after,
    parse_should_retry,
)

HEADER_NAMES = [
    "retry-after",
    "Retry-After",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "X-RateLimit-Reset-Tokens",
    "RateLimit-Policy",
    "RateLimit",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "content-type",
]


raw_values = st.binary(max_size=64).map(lambda raw: raw.decode("utf-8", "surrogateescape"))


plausible_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.from_regex(r"-?[0-9.]{0,12}(ns|us|ms|s|m|h){0,3}[0-9.]{0,6}(ms|s|m)?", fullmatch=True),
    st.from_regex(
        r'("[a-z]{0,8}"|[a-z]{1,8})(;[a-z]{1,2}=-?[0-9"a-z.]{0,10}){0,4}', fullmatch=True
    ),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "true", "false", "", " ", "1e309", "NaN"]),
)


values = st.one_of(raw_values, plausible_values, st.text(max_size=40))


header_lists = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), values), max_size=12)


def _finite_or_none(value: float | None, *, positive: bool = False) -> bool:
    if value is None:
        return True
    return math.isfinite(value) and (value > 0 if positive else value >= 0)


@settings(max_examples=150, deadline=None)
@given(header_lists, st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)))
def test_rate_limit_header_parsers_never_raise_and_return_sane_numbers(
    pairs: list[tuple[str, str]], now_wall: float | None
) -> None:
    """Whatever bytes arrive, parsing returns None or finite non-negative numbers, never raises."""
    headers = CIMultiDict(pairs)
    parsed = parse_rate_limit_headers(headers, now_wall=now_wall)
    assert isinstance(parsed, RateLimitHeaders)
    for name in ("requests_limit", "tokens_limit", "requests_window", "tokens_window"):
        assert _finite_or_none(getattr(parsed, name), positive=True), name
    for name in (
        "requests_remaining",
        "tokens_remaining",
        "requests_reset",
        "tokens_reset",
        "retry_after",
    ):
        assert _finite_or_none(getattr(parsed, name)), name
    for rate in (parsed.requests_per_second, parsed.tokens_per_minute):
        assert _finite_or_none(rate, positive=True)
    assert _finite_or_none(parse_retry_after(headers, now_wall=now_wall))
    assert parse_should_retry(headers) in (None, True, False)


@settings(max_examples=300, deadline=None)
@given(values)
def test_go_duration_parser_never_raises(text: str) -> None:
    """A Go duration parses to a finite non-negative number of seconds or None."""
    assert _finite_or_none(parse_go_duration(text))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=300),
    header_lists,
)
def test_classification_of_any_response_never_raises(
    status: int, body: bytes, pairs: list[tuple[str, str]]
) -> None:
    """Any status, body bytes and headers classify to a typed error with a finite wait or None."""
    verdict = classify_response(status, CIMultiDict(pairs), body, request_id=None)
    assert verdict.error.status_code == status
    assert _finite_or_none(verdict.retry_after)
    assert isinstance(verdict.retryable, bool)
