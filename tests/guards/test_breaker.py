"""The circuit breaker in virtual time: opens, probes, closes, re-opens with a doubled cooldown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler._guards._breaker import BreakerPolicy, CircuitBreaker

POLICY = BreakerPolicy(
    window=30.0, min_calls=10, failure_ratio=0.5, cooldown=15.0, max_cooldown=120.0
)


def state(breaker: CircuitBreaker) -> str:
    """The breaker's state, typed as plain str so consecutive checks type-check."""
    return breaker.state


def feed(breaker: CircuitBreaker, outcomes: str, start: float, step: float = 0.1) -> float:
    """Record ``outcomes`` ('o' ok, 'x' failure) ``step`` apart; return the time of the last."""
    now = start
    for index, outcome in enumerate(outcomes):
        now = start + index * step
        breaker.record(outcome == "o", now)
    return now


def opened(policy: BreakerPolicy = POLICY) -> tuple[CircuitBreaker, float]:
    """A breaker that has just opened, and the time it opened."""
    breaker = CircuitBreaker(policy)
    now = feed(breaker, "x" * policy.min_calls, 0.0)
    assert state(breaker) == "open"
    return breaker, now


def test_closed_breaker_lets_every_call_go() -> None:
    """A fresh breaker is closed and never delays."""
    breaker = CircuitBreaker(POLICY)
    assert state(breaker) == "closed"
    assert breaker.delay(0.0) == 0.0
    assert breaker.delay(1e6) == 0.0


def test_too_few_calls_never_open_it() -> None:
    """Nine failures out of nine stay below min_calls=10: no evidence yet, still closed."""
    breaker = CircuitBreaker(POLICY)
    feed(breaker, "x" * 9, 0.0)
    assert state(breaker) == "closed"


def test_opens_when_the_failure_ratio_is_reached() -> None:
    """Five failures in ten calls (ratio 0.5) open it; calls are held for the whole cooldown."""
    breaker = CircuitBreaker(POLICY)
    now = feed(breaker, "oxoxoxoxox", 0.0)
    assert state(breaker) == "open"
    assert breaker.delay(now) == pytest.approx(15.0)
    assert breaker.delay(now + 10.0) == pytest.approx(5.0)


def test_a_ratio_just_below_the_threshold_keeps_it_closed() -> None:
    """Four failures in ten calls (0.4 < 0.5) leave it closed."""
    breaker = CircuitBreaker(POLICY)
    feed(breaker, "ooxoxoxoxo", 0.0)
    assert state(breaker) == "closed"


def test_a_fractional_ratio_is_compared_exactly() -> None:
    """Three failures in ten calls reach failure_ratio=0.3 despite float rounding."""
    breaker = CircuitBreaker(BreakerPolicy(min_calls=10, failure_ratio=0.3))
    feed(breaker, "oooooooxxx", 0.0)
    assert state(breaker) == "open"


def test_failures_outside_the_window_are_forgotten() -> None:
    """Failures older than the window do not count toward the ratio."""
    breaker = CircuitBreaker(POLICY)
    feed(breaker, "x" * 9, 0.0)
    # 31 s later the nine failures have slid out: one more failure is 1 of 1 < min_calls.
    breaker.record(False, 31.0)
    assert state(breaker) == "closed"
    feed(breaker, "x" * 9, 32.0)
    assert state(breaker) == "open"


def test_half_open_lets_exactly_one_probe_through() -> None:
    """After the cooldown one caller gets 0.0; everyone else waits while the probe is out."""
    breaker, opened_at = opened()
    probe_time = opened_at + 15.0
    assert breaker.delay(probe_time) == 0.0
    assert state(breaker) == "half_open"
    assert breaker.delay(probe_time) > 0.0
    assert breaker.delay(probe_time + 1.0) > 0.0


def test_a_successful_probe_closes_and_clears_the_window() -> None:
    """Probe ok -> closed; old failures are gone, so one new failure does not re-open it."""
    breaker, opened_at = opened()
    probe_time = opened_at + 15.0
    assert breaker.delay(probe_time) == 0.0
    breaker.record(True, probe_time + 0.5)
    assert state(breaker) == "closed"
    assert breaker.delay(probe_time + 0.5) == 0.0
    feed(breaker, "x" * 9, probe_time + 1.0)
    assert state(breaker) == "closed"


def test_a_failed_probe_reopens_with_the_cooldown_doubled_up_to_the_maximum() -> None:
    """Each failed probe doubles the cooldown: 15 -> 30 -> 60 -> 120 -> 120 (max_cooldown)."""
    breaker, now = opened()
    waits = []
    for _ in range(4):
        now += breaker.delay(now)
        assert breaker.delay(now) == 0.0  # the probe
        breaker.record(False, now + 1.0)
        now += 1.0
        assert state(breaker) == "open"
        waits.append(breaker.delay(now))
    assert waits == pytest.approx([30.0, 60.0, 120.0, 120.0])


def test_closing_resets_the_cooldown() -> None:
    """After a failed probe doubled it, a successful probe brings the cooldown back to 15 s."""
    breaker, now = opened()
    now += 15.0
    breaker.delay(now)
    breaker.record(False, now)
    now += 30.0
    assert breaker.delay(now) == 0.0
    breaker.record(True, now)
    feed(breaker, "x" * 10, now + 1.0)
    assert state(breaker) == "open"
    assert breaker.cooldown == 15.0


def test_results_of_calls_sent_before_opening_are_ignored_while_open() -> None:
    """Stragglers answering while open neither close it nor extend the cooldown."""
    breaker, opened_at = opened()
    breaker.record(True, opened_at + 1.0)
    breaker.record(False, opened_at + 2.0)
    assert state(breaker) == "open"
    assert breaker.delay(opened_at + 2.0) == pytest.approx(13.0)


def test_a_lost_probe_is_replaced_after_one_cooldown() -> None:
    """A probe that is never recorded does not wedge the breaker: another goes a cooldown later."""
    breaker, opened_at = opened()
    probe_time = opened_at + 15.0
    assert breaker.delay(probe_time) == 0.0
    assert breaker.delay(probe_time + 5.0) == pytest.approx(10.0)
    assert breaker.delay(probe_time + 15.0) == 0.0
    assert breaker.delay(probe_time + 15.0) > 0.0


def test_transitions_are_reported_in_order() -> None:
    """on_transition sees closed->open->half_open->open->half_open->closed."""
    breaker = CircuitBreaker(POLICY)
    seen: list[tuple[str, str]] = []
    breaker.on_transition(lambda old, new: seen.append((old, new)))
    now = feed(breaker, "x" * 10, 0.0)
    now += 15.0
    breaker.delay(now)
    breaker.record(False, now)
    now += 30.0
    breaker.delay(now)
    breaker.record(True, now)
    assert seen == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_a_raising_listener_does_not_break_the_breaker() -> None:
    """A callback that raises is logged; the state still changes and later listeners still run."""
    breaker = CircuitBreaker(POLICY)
    seen: list[str] = []

    def bad(old: str, new: str) -> None:
        raise RuntimeError("listener bug")

    breaker.on_transition(bad)
    breaker.on_transition(lambda old, new: seen.append(new))
    feed(breaker, "x" * 10, 0.0)
    assert state(breaker) == "open"
    assert seen == ["open"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0.0},
        {"min_calls": 0},
        {"failure_ratio": 0.0},
        {"failure_ratio": 1.5},
        {"cooldown": -1.0},
        {"cooldown": 30.0, "max_cooldown": 10.0},
        {"window": float("inf")},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    """Invalid policies fail at construction, not at the first failure."""
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


# No per-example deadline: a loaded 2-core machine can stall one example past 200 ms.
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 20.0), st.sampled_from(["ok", "fail", "ask"])),
        max_size=200,
    )
)
def test_delay_is_never_negative_and_half_open_admits_one_probe(
    steps: list[tuple[float, str]],
) -> None:
    """For any events: delay >= 0, zero when closed, and a second probe only after a cooldown."""
    breaker = CircuitBreaker(BreakerPolicy(window=10.0, min_calls=3, cooldown=5.0))
    now = 0.0
    probe_at: float | None = None
    for gap, action in steps:
        now += gap
        if action != "ask":
            breaker.record(action == "ok", now)
            probe_at = None
            continue
        wait = breaker.delay(now)
        assert wait >= 0.0
        if state(breaker) == "closed":
            assert wait == 0.0
        elif state(breaker) == "open":
            assert wait > 0.0
        elif wait == 0.0:
            if probe_at is not None:
                assert now - probe_at >= breaker.cooldown - 1e-9
            probe_at = now
        else:
            assert probe_at is not None
