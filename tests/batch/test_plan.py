"""The deadline plan as tables: overflow, the rate it trusts, and which lines may move."""

from __future__ import annotations

import pytest

from grok_scheduler import Priority
from grok_scheduler._batch._plan import Estimate, may_overflow, overflow, rate_of, road_for


@pytest.mark.parametrize(
    ("waiting", "committed", "now", "rate", "tail", "expected"),
    [
        (1000, 0, 0.0, None, 0.0, 0),  # no rate learned: nothing moves yet
        (1000, 0, 0.0, 10.0, 0.0, 50),  # 10/s for 100 s, less 5%: 950 stay
        (1000, 50, 0.0, 10.0, 0.0, 100),  # lines in flight use capacity first
        (1000, 0, 0.0, 10.0, 10.0, 145),  # the last call's answer time counts
        (100, 0, 0.0, 10.0, 0.0, 0),  # room to spare
        (100, 0, 200.0, 10.0, 0.0, 100),  # past the deadline: everything waiting moves
        (0, 10, 0.0, 10.0, 0.0, 0),
    ],
)
def test_overflow(
    waiting: int, committed: int, now: float, rate: float | None, tail: float, expected: int
) -> None:
    """What cannot start before ``deadline - tail`` at the rate overflows, never more."""
    estimate = Estimate(rate=rate, tail=tail)
    n = overflow(waiting=waiting, committed=committed, now=now, deadline=100.0, estimate=estimate)
    assert n == expected


@pytest.mark.parametrize(
    ("rps", "tpm", "per_call", "recent", "expected"),
    [
        (None, None, None, 30.0, None),  # a measured rate alone is not trusted
        (20.0, None, None, None, 20.0),
        (20.0, 60_000, 2000.0, None, 0.5),  # tokens bind: 1000 a second / 2000 a call
        (20.0, None, None, 18.0, 20.0),  # a dip after a 429 does not lower the limit
        (15.0, None, None, 20.0, 20.0),  # the controller stepped down, the road did not
    ],
)
def test_rate_of(
    rps: float | None,
    tpm: float | None,
    per_call: float | None,
    recent: float | None,
    expected: float | None,
) -> None:
    """The learned limits, the tighter of the two, raised by what was recently achieved."""
    got = rate_of(
        requests_per_second=rps, tokens_per_minute=tpm, tokens_per_call=per_call, recent=recent
    )
    assert got == expected


def test_roads_by_priority() -> None:
    """LOW prefers the batch road; CRITICAL and HIGH never overflow; NORMAL may."""
    assert road_for(Priority.LOW, batch_available=True) == "batch"
    assert road_for(Priority.LOW, batch_available=False) == "online"
    assert road_for(Priority.NORMAL, batch_available=True) == "online"
    assert not may_overflow(Priority.CRITICAL) and not may_overflow(Priority.HIGH)
    assert may_overflow(Priority.NORMAL) and may_overflow(Priority.LOW)
