"""The deadline plan as tables: when lines move, how many, and which lines may move."""

from __future__ import annotations

import pytest

from grok_scheduler import Priority
from grok_scheduler._batch._plan import (
    BATCH_DELAY_MARGIN,
    Estimate,
    batch_delay_estimate,
    limit_rate,
    may_overflow,
    plan,
    road_for,
)

STEADY = Estimate(low=9.0, pace=10.0, high=12.0, tail=0.0)
"""The road keeps 10 lines a second (9 lately), its limit read as high as 12."""


@pytest.mark.parametrize(
    ("waiting", "queued", "now", "estimate", "expected", "phase"),
    [
        # 100 s left, the batch road takes 20 s: the point of no return is at 80 s.
        (1000, 0, 0.0, STEADY, 0, "early"),  # 13.2/s could start 1320: nothing moves yet
        (2000, 0, 0.0, STEADY, 680, "early"),  # beyond even 13.2/s: those move at once
        (2000, 100, 0.0, STEADY, 780, "early"),  # queued lines use starts first
        (1000, 0, 0.0, Estimate(low=9.0, pace=None, high=12.0, tail=0.0), 0, "early"),
        (2000, 0, 0.0, Estimate(low=9.0, pace=None, high=12.0, tail=0.0), 0, "early"),
        # The last chance (79.5 s): what 9/s cannot start in 20.5 s less a 1 s hedge moves.
        (300, 0, 79.5, STEADY, 125, "last"),
        (300, 0, 79.5, Estimate(low=9.0, pace=10.0, high=12.0, tail=5.0), 170, "last"),
        (3000, 0, 0.0, STEADY, 1680, "early"),
        (100, 0, 79.5, STEADY, 0, "last"),
        # Past it: only what even 12/s cannot start moves, and the deadline is at risk.
        (300, 0, 85.0, STEADY, 120, "late"),
        (100, 0, 95.0, Estimate(low=None, pace=None, high=None, tail=0.0), 0, "late"),
        (100, 0, 200.0, STEADY, 100, "late"),  # past the deadline: everything waiting moves
        (0, 10, 0.0, STEADY, 0, "early"),
    ],
)
def test_plan(
    waiting: int, queued: int, now: float, estimate: Estimate, expected: int, phase: str
) -> None:
    """Lines move only when even a faster road could not start them, or at the last chance."""
    decision = plan(
        waiting=waiting,
        queued=queued,
        now=now,
        deadline=100.0,
        estimate=estimate,
        batch_delay=20.0,
        replan_every=1.0,
    )
    assert (decision.divert, decision.phase) == (expected, phase)
    assert decision.at_risk == (phase == "late" and expected > 0)


@pytest.mark.parametrize(
    ("waiting", "now", "deadline", "batch_delay", "expected"),
    [
        (1000, 0.0, 100.0, 10.0, ("early", 0)),  # 1000 fit at 10/s: nothing is sent away early
        # 89.5 s: 105 lines are left; at 10/s, 10.5 s less the 1 s hedge start 95.
        (105, 89.5, 100.0, 10.0, ("last", 10)),
        # With 500.5 s of starts left at the last chance, the hedge is 3% of it (15 s, 150 lines).
        (5000, 499.5, 1000.0, 500.0, ("last", 146)),
    ],
)
def test_the_last_chance_moves_late_what_a_fixed_hold_back_moves_at_once(
    waiting: int, now: float, deadline: float, batch_delay: float, expected: tuple[str, int]
) -> None:
    """At the start nothing in the hedge moves; at the last chance the hedge is small."""
    decision = plan(
        waiting=waiting,
        queued=0,
        now=now,
        deadline=deadline,
        estimate=Estimate(low=10.0, pace=10.0, high=10.0, tail=0.0),
        batch_delay=batch_delay,
        replan_every=1.0,
    )
    assert (decision.phase, decision.divert) == expected


@pytest.mark.parametrize(
    ("prior", "seen", "oldest", "expected"),
    [
        (3600.0, None, None, 3600.0),  # nothing known: the prior
        (3600.0, None, 4000.0, 4000.0 * BATCH_DELAY_MARGIN),  # waiting longer than assumed
        (3600.0, 100.0, None, 100.0 * BATCH_DELAY_MARGIN),  # an answer seen: it counts
        (3600.0, 100.0, 300.0, 300.0 * BATCH_DELAY_MARGIN),  # one still waits longer
        (30.0, 100.0, 50.0, 100.0 * BATCH_DELAY_MARGIN),
    ],
)
def test_batch_delay_estimate(
    prior: float, seen: float | None, oldest: float | None, expected: float
) -> None:
    """The prior until the run sees the batch road answer; then what it saw, with a margin."""
    got = batch_delay_estimate(prior=prior, longest_seen=seen, oldest_waiting=oldest)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rps", "tpm", "per_call", "expected"),
    [
        (None, None, None, None),
        (20.0, None, None, 20.0),
        (20.0, 60_000, 2000.0, 0.5),  # tokens bind: 1000 a second / 2000 a call
        (None, 60_000, None, None),  # a token limit without a call size says nothing
    ],
)
def test_limit_rate(
    rps: float | None, tpm: float | None, per_call: float | None, expected: float | None
) -> None:
    """The tighter of the learned limits, in lines a second."""
    got = limit_rate(requests_per_second=rps, tokens_per_minute=tpm, tokens_per_call=per_call)
    assert got == expected


def test_roads_by_priority() -> None:
    """LOW prefers the batch road; CRITICAL and HIGH never overflow; NORMAL may."""
    assert road_for(Priority.LOW, batch_available=True) == "batch"
    assert road_for(Priority.LOW, batch_available=False) == "online"
    assert road_for(Priority.NORMAL, batch_available=True) == "online"
    assert not may_overflow(Priority.CRITICAL) and not may_overflow(Priority.HIGH)
    assert may_overflow(Priority.NORMAL) and may_overflow(Priority.LOW)
