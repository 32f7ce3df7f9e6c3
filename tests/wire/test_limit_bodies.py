"""Tests for reading the limits stated by xAI's rate-limit 429 bodies."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok_scheduler._wire._limit_bodies import StatedLimit, StatedLimits, parse_limit_body

# The four bodies captured in public code (docs: xai-api.md, "429 bodies state the limit").
RPS_ONLY = (
    "Too many requests for team f1692451-… and model grok-4.5. Your team's rate limit is "
    "\u2014 Requests per Second (actual/limit): 2/2."
)
RPS_AND_RPM = (
    "Too many requests for team … and model grok-4.3. Your team's rate limit is \u2014 "
    "Requests per Second (actual/limit): 2/2, Requests per Minute (actual/limit): 1922/60."
)
TPM = (
    "Too many tokens for team e9fe19cb and model grok-4-0709. Your team's rate limit is "
    "\u2014 Tokens per Minute (actual/limit): 65605/16000."
)
UNAVAILABLE = (
    "Too many requests for team … and model grok-4.5. Your team's rate limit is - "
    "Requests per Minute (actual/limit): 0/0."
)


def requests(window: float, actual: float, limit: float) -> StatedLimit:
    return StatedLimit(unit="requests", window=window, actual=actual, limit=limit)


def tokens(window: float, actual: float, limit: float) -> StatedLimit:
    return StatedLimit(unit="tokens", window=window, actual=actual, limit=limit)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (RPS_ONLY, StatedLimits("grok-4.5", (requests(1, 2, 2),), "requests")),
        (
            RPS_AND_RPM,
            StatedLimits("grok-4.3", (requests(1, 2, 2), requests(60, 1922, 60)), "requests"),
        ),
        (TPM, StatedLimits("grok-4-0709", (tokens(60, 65605, 16000),), "tokens")),
        (UNAVAILABLE, StatedLimits("grok-4.5", (requests(60, 0, 0),), "requests")),
    ],
)
def test_captured_bodies_are_read_exactly(message: str, expected: StatedLimits) -> None:
    """Each captured xAI body gives its model, every limit in order, and the dimension hit."""
    assert parse_limit_body(message) == expected


@pytest.mark.parametrize(
    "dash",
    ["\u2014", "\u2013", "-", "--", ":", ""],
    ids=["em", "en", "hyphen", "two", "colon", "none"],
)
@pytest.mark.parametrize(
    "preamble", ["Your team's rate limit is ", "Your team\u2019s rate limit is ", ""]
)
@pytest.mark.parametrize("end", [".", "", " .", ".\n"])
def test_glue_around_the_limits_does_not_matter(dash: str, preamble: str, end: str) -> None:
    """Dash form, the optional "Your team's rate limit is" and the final period change nothing."""
    message = (
        f"Too many requests for team abc and model grok-4.3. {preamble}{dash} "
        f"Requests per Second (actual/limit): 2/2, Requests per Minute (actual/limit): 1922/60{end}"
    )
    assert parse_limit_body(message) == StatedLimits(
        "grok-4.3", (requests(1, 2, 2), requests(60, 1922, 60)), "requests"
    )


@pytest.mark.parametrize(
    ("fragment", "limit"),
    [
        ("REQUESTS PER SECOND (ACTUAL/LIMIT): 3/2", requests(1, 3, 2)),
        ("requests per minute (actual/limit): 61/60", requests(60, 61, 60)),
        ("Requests per Hour (actual/limit): 1001/1000", requests(3600, 1001, 1000)),
        ("Requests per Day (actual/limit): 14401/14400", requests(86400, 14401, 14400)),
        ("Tokens per Hour (actual/limit): 5/4", tokens(3600, 5, 4)),
        ("Tokens per Day (actual / limit) : 5 / 4", tokens(86400, 5, 4)),
        ("Tokens per Minute (actual/limit): 65,605/16,000", tokens(60, 65605, 16000)),
        ("Tokens per Minute (actual/limit): 1,234,567/10,000,000", tokens(60, 1234567, 1e7)),
        ("Tokens per Minute: 65605/16000", tokens(60, 65605, 16000)),
        ("Tokens per Minute 65605/16000", tokens(60, 65605, 16000)),
        ("Request per second (actual/limit): 2/2", requests(1, 2, 2)),
        ("requests per min (actual/limit): 2/2", requests(60, 2, 2)),
        ("RPS (actual/limit): 2/2", requests(1, 2, 2)),
        ("TPM (actual/limit): 9/8", tokens(60, 9, 8)),
        ("RPD: 9/8", requests(86400, 9, 8)),
    ],
)
def test_every_dimension_and_spelling_is_read(fragment: str, limit: StatedLimit) -> None:
    """Case, per second/minute/hour/day, abbreviations and thousands separators are tolerated."""
    result = parse_limit_body(f"Too many requests for team t and model grok-4. {fragment}.")
    assert result is not None
    assert result.limits == (limit,)


def test_thousands_separator_does_not_swallow_the_next_limit() -> None:
    """Two limits stay two: a comma separates thousands only before exactly three digits."""
    result = parse_limit_body(
        "Requests per Second (actual/limit): 2/2, Tokens per Minute (actual/limit): 1,000/999"
    )
    assert result is not None
    assert result.limits == (requests(1, 2, 2), tokens(60, 1000, 999))


def test_zero_limit_marks_the_model_unavailable() -> None:
    """``0/0`` is not a limit to wait out: the caller gets an explicit marker."""
    unavailable = parse_limit_body(UNAVAILABLE)
    assert unavailable is not None
    assert unavailable.model_unavailable
    assert unavailable.limits[0].per_second is None
    for message in (RPS_ONLY, RPS_AND_RPM, TPM):
        result = parse_limit_body(message)
        assert result is not None
        assert not result.model_unavailable


def test_dimension_hit_follows_the_message() -> None:
    """The phrase "Too many tokens/requests" names the dimension hit, whatever is listed."""
    assert (parse_limit_body(TPM) or _NONE).hit == "tokens"
    assert (parse_limit_body(RPS_ONLY) or _NONE).hit == "requests"
    said_tokens = parse_limit_body("Too many tokens for team x and model grok-4")
    assert said_tokens == StatedLimits("grok-4", (), "tokens")


def test_dimension_hit_without_the_phrase_comes_from_the_reached_limits() -> None:
    """With no "Too many ..." phrase, the one dimension whose stated limit was reached is hit."""
    result = parse_limit_body("Rate limit: Requests per Minute: 3/60, Tokens per Minute: 9/8")
    assert result is not None
    assert result.hit == "tokens"
    both = parse_limit_body("Requests per Minute: 61/60, Tokens per Minute: 9/8")
    assert both is not None
    assert both.hit is None


def test_lookup_and_rates() -> None:
    """``limit_for`` finds one unit and window; ``per_second`` turns a limit into a rate."""
    result = parse_limit_body(RPS_AND_RPM)
    assert result is not None
    per_minute = result.limit_for("requests", 60.0)
    assert per_minute == requests(60, 1922, 60)
    assert per_minute.per_second == 1.0
    assert per_minute.reached
    assert result.limit_for("tokens", 60.0) is None


@pytest.mark.parametrize(
    "message",
    [
        # Billing exhaustion shares the 429: never a rate limit, even with numbers in it.
        "Free usage quota exceeded. Requests per Minute (actual/limit): 5/5.",
        "Your team has used all available credits or reached its monthly spending limit. "
        "Tokens per Minute (actual/limit): 100/50.",
        "Too many requests for team x and model grok-4: spending limit reached. RPS: 2/2",
        "Too many tokens for team x and model grok-4: you have no credits",
        # Statements of nothing.
        "",
        "Too Many Requests",
        "HTTP 429 Too Many Requests",
        "The service is temporarily at capacity. Please retry your request shortly.",
        "The model grok-4 is at capacity, please try again later.",
        "Requests per Minute",
        "Requests per Fortnight (actual/limit): 2/2",
        "Internal error",
    ],
)
def test_nothing_stated_or_not_a_rate_limit_gives_none(message: str) -> None:
    """Billing messages and messages that state no limit are not read as rate-limit evidence."""
    assert parse_limit_body(message) is None


@pytest.mark.parametrize(
    ("message", "model"),
    [
        ("Too many requests for team t and model grok-4.5.", "grok-4.5"),
        ("Too many requests for team t and model grok-code-fast-1", "grok-code-fast-1"),
        ("Too many requests (model: 'grok-3-mini') RPS: 2/2", "grok-3-mini"),
        ("This model is overloaded. RPS: 2/2", None),
    ],
)
def test_model_name(message: str, model: str | None) -> None:
    """The model name is read without the sentence's period; prose after "model" is not a name."""
    result = parse_limit_body(message)
    assert result is not None
    assert result.model == model


def test_bare_quota_exceeded_with_a_window_is_a_rate_limit() -> None:
    """Gateways say "quota exceeded" of per-minute limits: a stated window makes it a rate limit."""
    result = parse_limit_body("Quota exceeded: Requests per Minute (actual/limit): 61/60")
    assert result is not None
    assert result.limits == (requests(60, 61, 60),)
    assert parse_limit_body("You exceeded your current quota. RPM: 61/60") is None


def test_huge_numbers_are_dropped_not_infinite() -> None:
    """A number too large for a float is no limit: that entry is skipped, nothing raises."""
    assert parse_limit_body("Requests per Second: " + "9" * 400 + "/2") is None
    assert parse_limit_body("Requests per Second: 1/" + "9" * 400) is None


@given(st.text(max_size=300))
def test_never_raises_on_any_text(message: str) -> None:
    """Any string gives None or limits with finite, non-negative numbers."""
    result = parse_limit_body(message)
    if result is not None:
        for limit in result.limits:
            assert math.isfinite(limit.actual) and limit.actual >= 0
            assert math.isfinite(limit.limit) and limit.limit >= 0
            assert limit.window in (1.0, 60.0, 3600.0, 86400.0)


_FRAGMENT = st.builds(
    "{} per {} (actual/limit): {}/{}".format,
    st.sampled_from(["Requests", "tokens", "REQUEST"]),
    st.sampled_from(["Second", "minute", "Hour", "day"]),
    st.integers(0, 10**12),
    st.integers(0, 10**12),
)


@given(
    st.lists(_FRAGMENT, min_size=1, max_size=4),
    st.sampled_from(["\u2014", "\u2013", "-", ""]),
    # Noise that cannot spell a billing word or a limit of its own.
    st.text(alphabet="abcxyz .,-\u2014'\u20260123456789", max_size=30),
)
def test_every_fragment_in_a_body_is_found(fragments: list[str], dash: str, noise: str) -> None:
    """However many limits a body lists, each one comes back, in order, whatever precedes it."""
    message = f"{noise} Your team's rate limit is {dash} " + ", ".join(fragments) + "."
    result = parse_limit_body(message)
    assert result is not None
    assert [f"{x.actual:.0f}/{x.limit:.0f}" for x in result.limits] == [
        fragment.rsplit(": ", 1)[1] for fragment in fragments
    ]


def test_non_str_input_gives_none() -> None:
    """A caller passing bytes or None by mistake gets None, not an exception."""
    assert parse_limit_body(b"RPS: 2/2") is None  # type: ignore[arg-type]
    assert parse_limit_body(None) is None  # type: ignore[arg-type]


_NONE = StatedLimits(None, (), None)
