"""Tests for deriving a rate-limit header's window from evidence rather than assuming one."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok_scheduler._wire._headers import parse_go_duration
from grok_scheduler._wire._window_series import WindowObservation, settle_window
from grok_scheduler._wire._windows import (
    ClientCount,
    HeaderTriple,
    WindowCandidate,
    parse_stated_window,
    window_candidates,
)

T = HeaderTriple
Obs = WindowObservation


def best(triple: HeaderTriple, seen: ClientCount | None = None) -> WindowCandidate:
    candidates = window_candidates(triple, seen=seen)
    assert candidates, "expected at least one reading"
    return candidates[0]


def windows(triple: HeaderTriple, seen: ClientCount | None = None) -> list[float]:
    return [c.window for c in window_candidates(triple, seen=seen)]


def reset(text: str) -> float:
    seconds = parse_go_duration(text)
    assert seconds is not None
    return seconds


# --------------------------------------------------------------------------- the examples


def test_twenty_accepted_in_one_second_with_19_remaining_is_per_second() -> None:
    """Limit 20, remaining 19, reset 50ms after 20 accepted in 1 s: per second, not per minute."""
    triple = T(limit=20, remaining=19, reset=reset("50ms"))
    seen = ClientCount(accepted=20, within=1.0)
    chosen = best(triple, seen)
    assert chosen.window == 1.0
    assert chosen.rate_per_second == 20.0
    assert 60.0 not in windows(triple, seen)  # the client's own count rules per minute out


def test_openai_500_with_120ms_reset_is_per_minute() -> None:
    """OpenAI limit 500, remaining 499, reset 120ms: one request per 60/500 s, 500 per minute."""
    chosen = best(T(limit=500, remaining=499, reset=reset("120ms")))
    assert chosen.window == 60.0
    assert chosen.rate_per_second == pytest.approx(500 / 60)
    assert chosen.confidence >= 0.8


def test_groq_daily_request_limit() -> None:
    """Groq limit 14400, 30 used, reset 2m59.56s: per day, 14400/86400 per second."""
    triple = T(limit=14400, remaining=14370, reset=reset("2m59.56s"))
    chosen = best(triple)
    assert chosen.window == 86400.0
    assert chosen.rate_per_second == pytest.approx(14400 / 86400)
    # A reset of three minutes cannot belong to a one-minute window: the convention is out.
    assert 60.0 not in windows(triple)
    assert 1.0 not in windows(triple)


def test_groq_reset_in_hours_is_per_day() -> None:
    """A daily limit whose reset is hours away reads as per day even when the refill is loose."""
    assert best(T(limit=14400, remaining=14000, reset=reset("2h0m0s"))).window == 86400.0
    assert best(T(limit=14400, remaining=0, reset=reset("23h59m54s"))).window == 86400.0


# --------------------------------------------------------------------------- one triple, table


@pytest.mark.parametrize(
    ("triple", "window"),
    [
        # OpenAI docs' headers: 60 RPM, 1 used, back in 1 s.
        (T(limit=60, remaining=59, reset=reset("1s")), 60.0),
        # OpenAI tokens: 16 of 150000 back in 6 ms (rounded from 6.4 ms): per minute.
        (T(limit=150000, remaining=149984, reset=reset("6ms")), 60.0),
        # xAI's tier-0 grok-4.3 rate as a per-second server would send it: 37 RPS.
        (T(limit=37, remaining=36, reset=reset("27ms")), 1.0),
        # 2220 RPM (37 RPS over a minute) as OpenAI would send it.
        (T(limit=2220, remaining=2219, reset=reset("27ms")), 60.0),
        # 10M TPM, 40k used, back in 240 ms.
        (T(limit=10_000_000, remaining=9_960_000, reset=reset("240ms")), 60.0),
        # An hourly server: 1000 per hour, 10 used, back in 36 s.
        (T(limit=1000, remaining=990, reset=36.0), 3600.0),
        # A fixed hourly window (GitHub style): reset is the end of the window, 50 min away.
        (T(limit=5000, remaining=4990, reset=3000.0), 3600.0),
        # Nothing used, nothing to reset: only the convention remains.
        (T(limit=60, remaining=60, reset=0.0), 60.0),
        (T(limit=60), 60.0),
        # A stated window always wins.
        (T(limit=20, remaining=19, reset=3.0, stated_window=10.0), 10.0),
    ],
)
def test_window_of_one_triple(triple: HeaderTriple, window: float) -> None:
    """The best reading of each triple is the window the server really counts over."""
    assert best(triple).window == window


def test_stated_window_is_returned_alone_with_full_confidence() -> None:
    """An explicit window wins outright: no other reading is offered."""
    assert window_candidates(T(limit=100, stated_window=60.0)) == (
        WindowCandidate(60.0, 100 / 60, 1.0, "stated by the header family"),
    )


def test_convention_is_offered_only_when_nothing_contradicts_it() -> None:
    """Per minute stays a low-confidence reading, and goes when the reset or count contradict it."""
    alone = window_candidates(T(limit=20, remaining=19, reset=0.05))
    assert [(c.window, c.confidence) for c in alone] == [(1.0, 0.8), (60.0, 0.2)]
    assert 60.0 not in windows(T(limit=20, remaining=19, reset=61.0 * 1.1))


def test_client_count_that_fits_keeps_the_window() -> None:
    """Other clients only lower remaining: a low remaining never rules a window out."""
    triple = T(limit=60, remaining=0, reset=60.0)
    assert 60.0 in windows(triple, ClientCount(accepted=1, within=1.0))


def test_more_accepted_than_a_window_allows_rules_it_out() -> None:
    """40 accepted in one second under a limit of 20 cannot be a per-minute limit."""
    assert 60.0 not in windows(T(limit=20), ClientCount(accepted=40, within=1.0))
    assert windows(T(limit=20, remaining=0, reset=1.0), ClientCount(40, 1.0)) == [1.0]


@pytest.mark.parametrize(
    "triple",
    [
        T(limit=None),
        T(limit=0, remaining=0, reset=1.0),
        T(limit=-5, remaining=1, reset=1.0),
        T(limit=math.nan, remaining=1, reset=1.0),
        T(limit=math.inf, remaining=1, reset=1.0),
    ],
)
def test_unusable_limit_gives_no_reading(triple: HeaderTriple) -> None:
    """Without a positive, finite limit there is no rate to derive."""
    assert window_candidates(triple) == ()


def test_remaining_above_limit_is_ignored_not_trusted() -> None:
    """A malformed remaining (more than the limit) does not produce a refill reading."""
    assert windows(T(limit=20, remaining=25, reset=0.05)) == [1.0, 60.0]
    assert all(c.confidence < 0.5 for c in window_candidates(T(20, 25, 0.05)))


# --------------------------------------------------------------------------- a series


def test_recovery_within_half_a_second_settles_per_second() -> None:
    """Remaining back from 0 to 10 of 20 within 0.5 s with nothing sent: refill >= 20/s."""
    settled = settle_window([Obs(0.0, T(20, 0)), Obs(0.5, T(20, 10))])
    assert settled is not None
    assert (settled.window, settled.rate_per_second) == (1.0, 20.0)


def test_slow_recovery_settles_per_minute() -> None:
    """Back by 1 of 20 in 3 s: a window of at most 60 s, read as per minute."""
    settled = settle_window([Obs(0.0, T(20, 0)), Obs(3.0, T(20, 1))])
    assert settled is not None
    assert settled.window == 60.0


def test_recovery_counts_what_the_client_sent_in_between() -> None:
    """10 sent and remaining unchanged over 0.5 s: 10 came back, so the window is per second."""
    settled = settle_window([Obs(0.0, T(20, 10)), Obs(0.5, T(20, 10), accepted_since_previous=10)])
    assert settled is not None
    assert settled.window == 1.0


def test_daily_recovery_settles_per_day() -> None:
    """One of 14400 back in 6 s: at most 86400 s, per day."""
    settled = settle_window([Obs(0.0, T(14400, 0)), Obs(6.0, T(14400, 1))])
    assert settled is not None
    assert settled.window == 86400.0


def test_agreeing_refill_readings_raise_confidence() -> None:
    """Two OpenAI triples that agree on per minute settle it more firmly than one."""
    one = settle_window([Obs(0.0, T(500, 499, 0.12))])
    two = settle_window([Obs(0.0, T(500, 499, 0.12)), Obs(1.0, T(500, 496, 0.48), 4)])
    assert one is not None and two is not None
    assert one.window == two.window == 60.0
    assert two.confidence > one.confidence


def test_unmoved_deadline_while_sending_is_a_fixed_window() -> None:
    """GitHub style: the reset deadline stays put as requests go through: a fixed hourly window."""
    series = [
        Obs(0.0, T(5000, 4990, 3000.0)),
        Obs(10.0, T(5000, 4980, 2990.0), 10),
        Obs(20.0, T(5000, 4970, 2980.0), 10),
    ]
    settled = settle_window(series)
    assert settled is not None
    assert settled.window == 3600.0
    assert settled.confidence >= 0.6


def test_window_jump_at_a_fixed_reset_is_not_a_refill() -> None:
    """The whole count back at a fixed window's end is not read as a per-second refill."""
    series = [Obs(0.0, T(60, 0, 5.0)), Obs(6.0, T(60, 60, 60.0))]
    settled = settle_window(series)
    assert settled is not None
    assert settled.window == 60.0


def test_moving_deadline_while_sending_is_a_bucket() -> None:
    """A refilling bucket's deadline moves later with each request: the refill reading holds."""
    series = [Obs(0.0, T(20, 10, 0.5)), Obs(0.1, T(20, 8, 0.6), 4)]
    settled = settle_window(series)
    assert settled is not None
    assert (settled.window, settled.rate_per_second) == (1.0, 20.0)


def test_only_the_latest_limit_counts() -> None:
    """After the limit changes, earlier observations of the old limit are not evidence."""
    series = [Obs(0.0, T(20, 0)), Obs(0.5, T(20, 10)), Obs(1.0, T(500, 499, 0.12))]
    settled = settle_window(series)
    assert settled is not None
    assert settled.window == 60.0
    assert settled.rate_per_second == pytest.approx(500 / 60)


def test_observations_are_ordered_by_time_not_by_position() -> None:
    """A series given out of order reads the same as in order."""
    ordered = [Obs(0.0, T(20, 0)), Obs(0.5, T(20, 10))]
    assert settle_window(list(reversed(ordered))) == settle_window(ordered)


def test_series_with_nothing_usable() -> None:
    """No observations, or none with a limit, settle nothing; a stated window settles at once."""
    assert settle_window([]) is None
    assert settle_window([Obs(0.0, T(None, 5, 1.0))]) is None
    stated = settle_window([Obs(0.0, T(20, 0, stated_window=10.0))])
    assert stated is not None
    assert (stated.window, stated.confidence) == (10.0, 1.0)
    assert settle_window([Obs(0.0, T(60))]) == best(T(60))


# --------------------------------------------------------------------------- stated windows


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ('"burst";q=100;w=60', 60.0),
        ("100;w=1", 1.0),
        ("10, 10;w=1, 50;w=60", 1.0),
        ("limit=100, 60s", 60.0),
        ("100, 1m", 60.0),
        ("window=1h", 3600.0),
        ("window: 30", 30.0),
        ("100 per minute", 60.0),
        ("100/day", 86400.0),
        ("100/s", 1.0),
        ("100", None),
        ("", None),
        ("w=0", None),
        ("w=abc", None),
        ("100 per month", None),
    ],
)
def test_parse_stated_window(text: str, window: float | None) -> None:
    """Every form a family uses to state its window is read; anything else states none."""
    assert parse_stated_window(text) == window


# --------------------------------------------------------------------------- properties

_ANY = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30)
_TRIPLE = st.builds(HeaderTriple, _ANY, _ANY, _ANY, _ANY)


def _sane(candidate: WindowCandidate) -> None:
    assert 0 < candidate.window < math.inf
    assert 0 < candidate.rate_per_second < math.inf
    assert 0 <= candidate.confidence <= 1


@given(_TRIPLE, st.none() | st.builds(ClientCount, _ANY, _ANY))
def test_any_triple_gives_only_positive_finite_rates(
    triple: HeaderTriple, seen: ClientCount | None
) -> None:
    """Whatever the numbers, nothing raises and every reading has a positive, finite rate."""
    candidates = window_candidates(triple, seen=seen)
    for candidate in candidates:
        _sane(candidate)
    assert list(candidates) == sorted(candidates, key=lambda c: -c.confidence)


@given(st.lists(st.builds(WindowObservation, _ANY.filter(lambda v: v is not None), _TRIPLE, _ANY)))
def test_any_series_settles_on_a_positive_finite_rate_or_none(
    series: list[WindowObservation],
) -> None:
    """Whatever the series, nothing raises and the settled rate is positive and finite, or None."""
    settled = settle_window(series)
    if settled is not None:
        _sane(settled)


@given(
    st.integers(1, 10**7),
    st.sampled_from([1.0, 60.0, 3600.0, 86400.0]),
    st.floats(0.01, 1.0),
)
def test_exact_refill_triples_read_back_their_window(
    limit: int, window: float, used_fraction: float
) -> None:
    """A bucket reporting exactly (used, used * window / limit) is read back as its window."""
    used = max(1, round(limit * used_fraction))
    triple = T(limit=limit, remaining=limit - used, reset=used * window / limit)
    assert best(triple).window == window


@given(st.text(max_size=200))
def test_parse_stated_window_never_raises(text: str) -> None:
    """Any header text gives a positive, finite window or None."""
    window = parse_stated_window(text)
    assert window is None or 0 < window < math.inf
