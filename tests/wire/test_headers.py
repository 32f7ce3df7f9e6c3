"""Tests for the pure rate-limit header parsers."""

from __future__ import annotations

import math
import os
import time
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from grok_scheduler._wire._headers import (
    RateLimitHeaders,
    parse_go_duration,
    parse_rate_limit_headers,
    parse_retry_after,
    parse_should_retry,
)

NOW = 1_700_000_000.0
FIELDS = (
    "requests_limit",
    "requests_remaining",
    "requests_reset",
    "requests_window",
    "tokens_limit",
    "tokens_remaining",
    "tokens_reset",
    "tokens_window",
    "retry_after",
    "should_retry",
)


def parse(headers: dict[str, str]) -> RateLimitHeaders:
    return parse_rate_limit_headers(headers, now_wall=NOW)


# --------------------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("2m59.56s", 179.56),
        ("1h2m3s", 3723.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),  # MICRO SIGN, as Go prints it
        ("250\u03bcs", 0.00025),  # GREEK SMALL LETTER MU, which Go also accepts
        ("500ns", 5e-7),
        ("1m30ms", 60.03),  # "ms" must not be read as "m" then "s"
        (".5s", 0.5),
        ("+2s", 2.0),
        ("0", 0.0),
        ("7", 7.0),
        ("7.25", 7.25),
        ("  3s  ", 3.0),
    ],
)
def test_go_duration_forms(text: str, seconds: float) -> None:
    """Every Go duration form, and a plain number, parses to seconds."""
    result = parse_go_duration(text)
    assert result is not None
    assert result == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "s",
        "ms",
        ".",
        "-1s",
        "-5",
        "1d",
        "1S",
        "1 s",
        "1s2",
        "1..5s",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "1_000",
        "1h-2m",
        "++1s",
        "\x00",
        "1s\udc80",
        "9" * 400 + "h",
    ],
)
def test_go_duration_rejects_garbage(text: str) -> None:
    """Negative, non-finite, unit-less-with-junk and unknown-unit durations are None."""
    assert parse_go_duration(text) is None


def test_go_duration_negative_zero_is_plain_zero() -> None:
    """ "-0" is a zero wait, reported as +0.0."""
    result = parse_go_duration("-0")
    assert result == 0.0
    assert result is not None and math.copysign(1.0, result) == 1.0


# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "5"}, 5.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"RETRY-AFTER": " 0 "}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After-Ms": "1500.5"}, 1.5005),
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),  # ms wins
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),  # bad ms falls through
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"retry-after": "10000"}, 10000.0),  # not capped here
        ({"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),  # past date clamps to 0
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0),  # IMF-fixdate, NOW + 30
        ({"retry-after": "Tuesday, 14-Nov-23 22:13:40 GMT"}, 20.0),  # RFC 850 form
        ({"retry-after": "Tue Nov 14 22:14:20 2023"}, 60.0),  # asctime form
        ({"retry-after": "Tue, 14 Nov 99999 22:13:50 GMT"}, None),  # year out of range
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"x-other": "1"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    """retry-after-ms wins over retry-after; seconds or HTTP-date; junk is ignored."""
    result = parse_retry_after(headers, now_wall=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_retry_after_http_date_counts_from_now_wall() -> None:
    """An HTTP-date in the future yields its distance from now_wall."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after({"Retry-After": date}, now_wall=1445412480 - 42) == 42.0


def test_retry_after_asctime_has_no_zone_and_is_read_as_gmt() -> None:
    """An HTTP-date without a zone is GMT, whatever the machine's local time zone is."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        result = parse_retry_after({"retry-after": "Tue Nov 14 22:14:20 2023"}, now_wall=NOW)
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
    assert result == 60.0


# --------------------------------------------------------------------------- x-should-retry


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" true ", True),
        ("false", False),
        ("False", False),
        ("yes", None),
        ("1", None),
        ("", None),
    ],
)
def test_should_retry(value: str, expected: bool | None) -> None:
    """x-should-retry is read as true/false in any case; anything else is no verdict."""
    assert parse_should_retry({"X-Should-Retry": value}) is expected
    assert parse({"x-should-retry": value}).should_retry is expected


def test_should_retry_absent() -> None:
    """Without the header there is no verdict."""
    assert parse_should_retry({"content-type": "application/json"}) is None


# --------------------------------------------------------------------------- families


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {
                "x-ratelimit-limit-requests": "600",
                "x-ratelimit-remaining-requests": "599",
                "x-ratelimit-reset-requests": "100ms",
                "x-ratelimit-limit-tokens": "150000",
                "x-ratelimit-remaining-tokens": "149984",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            {
                "requests_limit": 600.0,
                "requests_remaining": 599.0,
                "requests_reset": 0.1,
                # OpenAI-style headers do not say their window: it is read from the triple
                # (_wire/_header_limits.py), never assumed.
                "requests_window": None,
                "tokens_limit": 150000.0,
                "tokens_remaining": 149984.0,
                "tokens_reset": 360.0,
                "tokens_window": None,
            },
            id="openai",
        ),
        pytest.param(
            {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "12"},
            {"requests_limit": 100.0, "requests_remaining": 7.0, "requests_reset": 12.0},
            id="generic-seconds",
        ),
        pytest.param(
            {"X-RateLimit-Reset": str(int(NOW) + 45)},
            {"requests_reset": 45.0},
            id="generic-unix-timestamp",
        ),
        pytest.param(
            {"X-RateLimit-Reset": str(int(NOW) - 45)},
            {"requests_reset": 0.0},
            id="generic-past-timestamp-clamps",
        ),
        pytest.param(
            {"X-RateLimit-Reset": str(int(NOW * 1000) + 2500)},
            {"requests_reset": 2.5},
            id="generic-millisecond-timestamp",
        ),
        pytest.param(
            {"X-RateLimit-Limit": "10, 10;w=1, 1000;w=3600"},
            {"requests_limit": 10.0, "requests_window": 1.0},
            id="generic-with-inline-policy",
        ),
        pytest.param(
            {
                "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
                "RateLimit": '"burst";r=50;t=30',
            },
            {
                "requests_limit": 100.0,
                "requests_window": 60.0,
                "requests_remaining": 50.0,
                "requests_reset": 30.0,
            },
            id="ietf",
        ),
        pytest.param(
            {
                "RateLimit-Policy": '"daily";q=1000;w=86400, "burst";q=100;w=60',
                "RateLimit": '"daily";r=900;t=3000, "burst";r=50;t=30',
            },
            {
                "requests_limit": 100.0,
                "requests_window": 60.0,
                "requests_remaining": 50.0,
                "requests_reset": 30.0,
            },
            id="ietf-shortest-window-wins-and-matches-by-name",
        ),
        pytest.param(
            {
                "RateLimit-Policy": '"burst";q=100;w=60',
                "RateLimit": '"other";r=5;t=2, "more";r=9;t=9',
            },
            {
                "requests_limit": 100.0,
                "requests_window": 60.0,
                "requests_remaining": 5.0,
                "requests_reset": 2.0,
            },
            id="ietf-no-name-match-uses-first",
        ),
        pytest.param(
            {"RateLimit": '"burst";r=3;t=4'},
            {"requests_remaining": 3.0, "requests_reset": 4.0},
            id="ietf-ratelimit-without-policy",
        ),
        pytest.param(
            {
                "RateLimit-Policy": ' burst ; q=10 ;w=1 ;pk=:cHJvamVjdDEyMw==:;comment="a, b;c" ,'
                ' "x\\"y";q=5;w=0.5',
            },
            {"requests_limit": 5.0, "requests_window": 0.5},
            id="ietf-tokens-whitespace-bytes-escapes-unknown-params",
        ),
        pytest.param(
            {"RateLimit-Policy": '"a";w=1, ;q=1, =;;;, "b";q=7;w=10, "c";q=-1;w=0.1, "d";q=3;w=0'},
            {"requests_limit": 7.0, "requests_window": 10.0},
            id="ietf-malformed-items-skipped",
        ),
        pytest.param(
            {"RateLimit-Policy": '"b";q=7;w=10, bo"gus;q=1;w=0.1, "c";q=1;w=0.2'},
            {"requests_limit": 7.0, "requests_window": 10.0},
            id="ietf-unbalanced-quote-spoils-only-what-follows",
        ),
        pytest.param(
            {"RateLimit-Policy": '"p";q=20'},
            {"requests_limit": 20.0},
            id="ietf-policy-without-window",
        ),
        pytest.param(
            {"RateLimit-Policy": "100;w=60"},
            {"requests_limit": 100.0, "requests_window": 60.0},
            id="ietf-early-draft-numeric-item",
        ),
        pytest.param(
            {
                "RateLimit-Policy": '"rpm";q=60;w=60, "tpm";q=100000;w=60;u="tokens"',
                "RateLimit": '"tpm";r=5000;t=20, "rpm";r=10;t=6',
            },
            {
                "requests_limit": 60.0,
                "requests_window": 60.0,
                "requests_remaining": 10.0,
                "requests_reset": 6.0,
                "tokens_limit": 100000.0,
                "tokens_window": 60.0,
                "tokens_remaining": 5000.0,
                "tokens_reset": 20.0,
            },
            id="ietf-tokens-by-unit-param",
        ),
        pytest.param(
            {
                "RateLimit-Policy": '"token-minute";q=9000;w=60, "req";q=5;w=1',
                "RateLimit": '"token-minute";r=100;t=1',
            },
            {
                "requests_limit": 5.0,
                "requests_window": 1.0,
                "tokens_limit": 9000.0,
                "tokens_window": 60.0,
                "tokens_remaining": 100.0,
                "tokens_reset": 1.0,
            },
            id="ietf-tokens-by-name-not-used-for-requests",
        ),
        pytest.param(
            {"RateLimit-Policy": '"bytes";q=1000;w=1;qu="content-bytes", "r";q=10;w=60'},
            {"requests_limit": 10.0, "requests_window": 60.0},
            id="ietf-other-quota-units-ignored",
        ),
        pytest.param(
            {"RateLimit-Limit": "40", "RateLimit-Remaining": "39", "RateLimit-Reset": "8"},
            {"requests_limit": 40.0, "requests_remaining": 39.0, "requests_reset": 8.0},
            id="ietf-older-draft-fields",
        ),
    ],
)
def test_families(headers: dict[str, str], expected: dict[str, float]) -> None:
    """Each header family fills exactly the fields it speaks about."""
    result = parse(headers)
    for field in FIELDS:
        want = expected.get(field)
        got = getattr(result, field)
        if want is None:
            assert got is None, field
        else:
            assert got == pytest.approx(want), field


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"x-ratelimit-remaining-requests": "-1"}, "requests_remaining"),
        ({"x-ratelimit-remaining-requests": "lots"}, "requests_remaining"),
        ({"x-ratelimit-limit-requests": "0"}, "requests_limit"),
        ({"x-ratelimit-limit-requests": "-10"}, "requests_limit"),
        ({"x-ratelimit-limit-tokens": "nan"}, "tokens_limit"),
        ({"x-ratelimit-limit-tokens": "1e999"}, "tokens_limit"),
        ({"x-ratelimit-reset-tokens": "-1s"}, "tokens_reset"),
        ({"x-ratelimit-reset-tokens": "1 day"}, "tokens_reset"),
        ({"X-RateLimit-Remaining": "-3"}, "requests_remaining"),
        ({"X-RateLimit-Reset": "-3"}, "requests_reset"),
        ({"X-RateLimit-Limit": "a, b;w=1"}, "requests_limit"),
        ({"RateLimit": '"p";r=-1;t=-1'}, "requests_remaining"),
        ({"RateLimit": '"p";r=-1;t=-1'}, "requests_reset"),
        ({"RateLimit-Policy": '"p";q=abc;w=1'}, "requests_limit"),
        ({"RateLimit-Policy": '"unterminated;q=5;w=1'}, "requests_limit"),
    ],
)
def test_malformed_values_are_ignored(headers: dict[str, str], field: str) -> None:
    """Malformed, negative or non-finite values become None, and never raise."""
    result = parse(headers)
    assert getattr(result, field) is None
    assert result is parse({})


def test_nothing_present_returns_shared_empty_instance() -> None:
    """Responses without rate-limit headers all get the same empty object."""
    first = parse({"content-type": "application/json", "x-request-id": "abc"})
    second = parse({})
    assert first is second
    assert first.is_empty
    assert not parse({"retry-after": "1"}).is_empty


# --------------------------------------------------------------------------- precedence


def test_openai_beats_ietf_beats_generic_per_field() -> None:
    """For each field the OpenAI value wins, then IETF, then generic; windows stay with limits."""
    headers = {
        "x-ratelimit-limit-requests": "600",
        "RateLimit-Policy": '"burst";q=10;w=1',
        "RateLimit": '"burst";r=4;t=0.5',
        "X-RateLimit-Limit": "99",
        "X-RateLimit-Remaining": "98",
        "X-RateLimit-Reset": "97",
    }
    result = parse(headers)
    assert result.requests_limit == 600.0
    assert result.requests_window is None  # the OpenAI family states no window
    assert result.requests_remaining == 4.0
    assert result.requests_reset == 0.5


def test_generic_fills_what_others_leave_out() -> None:
    """A field no higher family states is taken from the generic family, without a window."""
    result = parse({"RateLimit": '"x";r=4', "X-RateLimit-Limit": "99", "X-RateLimit-Reset": "7"})
    assert (result.requests_limit, result.requests_window) == (99.0, None)
    assert result.requests_remaining == 4.0
    assert result.requests_reset == 7.0


def test_structured_ietf_beats_older_draft_fields() -> None:
    """RateLimit-Policy outranks the older RateLimit-Limit form."""
    result = parse({"RateLimit-Limit": "40", "RateLimit-Policy": '"p";q=20;w=2'})
    assert (result.requests_limit, result.requests_window) == (20.0, 2.0)


# --------------------------------------------------------------------------- case and containers


@pytest.mark.parametrize(
    "name",
    ["x-ratelimit-limit-requests", "X-RateLimit-Limit-Requests", "X-RATELIMIT-LIMIT-REQUESTS"],
)
def test_header_names_are_case_insensitive(name: str) -> None:
    """Any casing of a header name is recognised."""
    assert parse({name: "120"}).requests_limit == 120.0


def test_aiohttp_multidict_proxy() -> None:
    """An aiohttp CIMultiDictProxy works, and repeated RateLimit lines are joined as one list."""
    raw: CIMultiDict[str] = CIMultiDict()
    raw.add("RateLimit-Policy", '"daily";q=1000;w=86400')
    raw.add("ratelimit-policy", '"burst";q=100;w=60')
    raw.add("Retry-After", "3")
    raw.add("retry-after", "99")  # the first value of a scalar header wins
    result = parse_rate_limit_headers(CIMultiDictProxy(raw), now_wall=NOW)
    assert (result.requests_limit, result.requests_window) == (100.0, 60.0)
    assert result.retry_after == 3.0


def test_now_wall_defaults_to_the_current_time() -> None:
    """Without now_wall, a timestamp reset far in the past clamps to zero."""
    assert parse_rate_limit_headers({"X-RateLimit-Reset": "1500000000"}).requests_reset == 0.0


# --------------------------------------------------------------------------- derived rates


@pytest.mark.parametrize(
    ("value", "rps", "tpm"),
    [
        (RateLimitHeaders(requests_limit=600, requests_window=60), 10.0, None),
        (RateLimitHeaders(tokens_limit=1000, tokens_window=1), None, 60000.0),
        (RateLimitHeaders(tokens_limit=150000, tokens_window=60), None, 150000.0),
        (RateLimitHeaders(requests_limit=600), None, None),
        (RateLimitHeaders(requests_window=60), None, None),
        (RateLimitHeaders(requests_limit=600, requests_window=0), None, None),
    ],
)
def test_derived_rates(value: RateLimitHeaders, rps: float | None, tpm: float | None) -> None:
    """Rates exist only when both the limit and its window are known and positive."""
    assert value.requests_per_second == rps
    assert value.tokens_per_minute == tpm


def test_openai_limits_alone_state_no_rate() -> None:
    """A bare OpenAI-style limit says no window: no rate is assumed from it."""
    result = parse({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "2000000"})
    assert result.requests_per_second is None
    assert result.tokens_per_minute is None


# --------------------------------------------------------------------------- never raises

NAMES = st.sampled_from(
    [
        "retry-after",
        "Retry-After-Ms",
        "x-should-retry",
        "x-ratelimit-limit-requests",
        "X-RateLimit-Remaining-Requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "RateLimit-Policy",
        "RateLimit",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ]
)
GARBAGE_BYTES = st.binary(max_size=40)
VALUES = st.one_of(
    st.text(max_size=40),
    GARBAGE_BYTES.map(lambda b: b.decode("utf-8", "surrogateescape")),
    GARBAGE_BYTES.map(lambda b: b.decode("latin-1")),
    st.text(alphabet='"\\;,=:?*- 0123456789.abcdqrtwu', max_size=60),
    st.floats().map(str),
    st.integers().map(str),
    st.sampled_from(
        ["1h2m3s", "12ms", '"a";q=1;w=1', "Wed, 21 Oct 2015 07:28:00 GMT", "1e309", "-0"]
    ),
)
HEADERS = st.dictionaries(st.one_of(NAMES, st.text(max_size=20)), VALUES, max_size=8)


# No per-example deadline: a loaded 2-core machine can stall one example past 200 ms.
@settings(deadline=None)
@given(headers=HEADERS, now_wall=st.one_of(st.none(), st.floats()))
def test_parse_never_raises(headers: dict[str, str], now_wall: float | None) -> None:
    """Any headers at all parse without raising, and every number is finite and non-negative."""
    result = parse_rate_limit_headers(headers, now_wall=now_wall)
    parse_retry_after(headers, now_wall=now_wall)
    parse_should_retry(headers)
    for field in FIELDS[:-1]:
        value = getattr(result, field)
        assert value is None or (math.isfinite(value) and value >= 0), (field, value)


# No per-example deadline: a loaded 2-core machine can stall one example past 200 ms.
@settings(deadline=None)
@given(text=st.one_of(VALUES, st.from_regex(r"[+-]?(\d{0,5}(\.\d{0,3})?(h|m|s|ms|us|ns)){1,4}")))
def test_go_duration_never_raises(text: str) -> None:
    """parse_go_duration returns None or a finite number of seconds >= 0 for any text."""
    result = parse_go_duration(text)
    assert result is None or (math.isfinite(result) and result >= 0)
