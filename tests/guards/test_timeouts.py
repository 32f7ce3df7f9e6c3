"""The non-streamed call timeout: it follows the latency, from 50 ms calls to 60 s calls."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok_scheduler._guards._timeouts import CallTimeouts


def _learned(durations: list[float], tokens: int) -> CallTimeouts:
    timeouts = CallTimeouts()
    for seconds in durations:
        timeouts.observe(seconds, tokens)
    return timeouts


def test_at_50_ms_a_hang_is_cut_within_the_minimum() -> None:
    """50 ms calls of 16 tokens (max_tokens=16): a hung call is given up after 2 s."""
    rng = random.Random(1)
    timeouts = _learned([0.05 * (1 + rng.uniform(-0.5, 0.5)) for _ in range(64)], 16)
    assert timeouts.timeout_for(16) == 2.0


def test_at_4_s_a_hang_is_cut_in_seconds_not_minutes() -> None:
    """4 s calls (+-50%) of 16 tokens: the bound is two slow calls, not the old ~130 s."""
    rng = random.Random(2)
    durations = [4.0 * (1 + rng.uniform(-0.5, 0.5)) for _ in range(64)]
    timeouts = _learned(durations, 16)
    assert timeouts.timeout_for(16) == 2 * max(durations) + 1
    assert timeouts.timeout_for(16) < 14.0


def test_short_answers_do_not_price_each_further_token_as_a_whole_call() -> None:
    """4 s calls of 16 tokens (0.25 s a token, all of it the wait for the first) under
    max_tokens=64: the 48 tokens no answer used get a slow decoder's 0.05 s each, not 0.25 s,
    so a hang is cut after about 16 s rather than 60 s."""
    rng = random.Random(4)
    durations = [4.0 * rng.lognormvariate(0.0, 0.25) for _ in range(64)]
    timeouts = _learned(durations, 16)
    slow = sorted(durations)[int(0.99 * 64)]
    assert timeouts.timeout_for(64) == pytest.approx(2 * (slow + 0.05 * 48) + 1)
    assert timeouts.timeout_for(64) < 22.0


def test_at_60_s_no_healthy_call_is_cut() -> None:
    """60 s median calls with a heavy tail: the bound is above every call seen, times two."""
    rng = random.Random(3)
    durations = [60.0 * rng.lognormvariate(0.0, 0.5) for _ in range(64)]
    timeouts = _learned(durations, 400)
    assert timeouts.timeout_for(400) >= min(900.0, 2 * max(durations))


def test_a_longer_answer_than_any_seen_gets_time_per_extra_token() -> None:
    """Tokens beyond the longest answer seen are given the median seconds per token."""
    timeouts = _learned([1.0] * 8, 100)  # 0.01 s per token
    assert timeouts.timeout_for(100) == 2 * 1.0 + 1
    assert timeouts.timeout_for(2100) == 2 * (1.0 + 0.01 * 2000) + 1


@given(
    durations=st.lists(st.floats(0.001, 300.0), min_size=8, max_size=64),
    tokens=st.integers(1, 4096),
)
def test_an_answer_like_one_seen_is_never_cut(durations: list[float], tokens: int) -> None:
    """Whatever was observed, a call as long as the slowest seen stays inside the bound."""
    timeouts = _learned(durations, tokens)
    assert timeouts.timeout_for(tokens) >= min(900.0, max(durations))
