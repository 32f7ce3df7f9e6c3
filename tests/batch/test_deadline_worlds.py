"""``via="auto"`` in virtual time across worlds: the deadline met with the fewest batch lines.

Each world runs 3,000 lines whose online makespan is about twice the deadline, so about half
must go by batch. ``fewest`` is the least any plan could send by batch: the lines beyond what
the world's limits let the online road start before ``deadline - latency``. The plan must meet
the deadline and stay close to that least; a fixed hold-back, a plan that trusts the limit over
the pace the road really keeps, or one that plans every model against the default model's
limit, fails here.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from batch_worlds import AutoRun, make_lines, run_auto

from grok_scheduler._batch._roads import Line
from grok_scheduler.simulator import SimulatorConfig
from grok_scheduler.simulator._batches import BatchConfig
from grok_scheduler.simulator._config import LimitChange, ModelLimits

LINES = 3000
BATCH = BatchConfig(processing_delay=10.0)
EXPECTED_BATCH_DELAY = 30.0
"""What the user tells the plan to expect of the batch road (three times what it takes)."""


def _world(*, rps: float = 20.0, latency: float = 1.0, **extra: object) -> SimulatorConfig:
    return SimulatorConfig(
        requests_per_second=rps,
        latency=latency,
        latency_dist="fixed",
        **extra,  # type: ignore[arg-type]
    )


async def _run_auto(
    lines: list[Line], config: SimulatorConfig, deadline: float, **options: Any
) -> AutoRun:
    """``run_auto`` with this file's batch road and the delay the user tells the plan."""
    options.setdefault("batch", BATCH)
    return await run_auto(
        lines, config=config, deadline_in=deadline, batch_delay=EXPECTED_BATCH_DELAY, **options
    )


def _each_line_once(run: AutoRun, n: int) -> None:
    ids = [o.custom_id for o in run.outcomes]
    assert len(ids) == len(set(ids)) == n
    assert all(o.ok for o in run.outcomes)
    assert run.rest.book.stats.duplicates == 0
    online = sum(1 for s in run.world.sent if s.status == 200)
    assert online == run.by_road["online"]
    assert run.rest.book.stats.requests_added == run.by_road["batch"] == run.roads.diverted


@pytest.mark.parametrize(
    ("deadline", "latency", "most_over"),
    [
        # Within 3% at this scale: the controller finding a limit no header states, and its
        # probing, cost the online road ~1.5% of its lines (benchmarks/batch.py: 20,000 lines).
        (75.0, 1.0, 1.03),
        # 5 s calls need ~100 in flight at 20 rps: finding the limit costs more lines when each
        # call takes 5 s to tell.
        (80.0, 5.0, 1.05),
    ],
    ids=["1s-calls", "5s-calls"],
)
async def test_the_fewest_batch_lines_that_meet_the_deadline(
    deadline: float, latency: float, most_over: float
) -> None:
    """20 rps: the deadline met, within a few % of the least any plan could send by batch."""
    rps = 20.0
    run = await _run_auto(make_lines(LINES), _world(rps=rps, latency=latency), deadline)
    _each_line_once(run, LINES)
    assert run.took <= deadline, run.took
    fewest = LINES - rps * (deadline - latency)
    assert fewest <= run.roads.diverted <= fewest * most_over, (run.roads.diverted, fewest)
    assert run.roads.late == {"online": 0, "batch": 0}


async def test_a_limit_that_halves_mid_run() -> None:
    """20 rps halves to 10 rps 25 s in: the plan follows the pace and still meets 75 s."""
    deadline, latency = 75.0, 1.0
    halves = (LimitChange(after=25.0, factor=0.5),)
    run = await _run_auto(
        make_lines(LINES), _world(latency=latency, limit_changes=halves), deadline
    )
    _each_line_once(run, LINES)
    assert run.took <= deadline, run.took
    # The server's one-second burst (20 calls) is the online road's too: a ramp that is quick
    # off the mark uses it, so the least any plan could send is that much lower.
    fewest = LINES - (20.0 + 20.0 * 25.0 + 10.0 * (deadline - latency - 25.0))
    # Lines move late, after the fall shows in the pace: hardly more than a plan that knew.
    assert fewest <= run.roads.diverted <= fewest * 1.02, (run.roads.diverted, fewest)


async def test_each_model_is_planned_against_its_own_limit() -> None:
    """grok-4 at 20 rps, grok-3-mini at 5 rps: each model's overflow is its own."""
    deadline, latency = 75.0, 1.0
    limits = {
        "grok-4": ModelLimits(requests_per_second=20.0),
        "grok-3-mini": ModelLimits(requests_per_second=5.0),
    }
    fast = make_lines(1500, prefix="f", model="grok-4")
    slow = make_lines(1500, prefix="s", model="grok-3-mini")
    run = await _run_auto(fast + slow, _world(latency=latency, model_limits=limits), deadline)
    _each_line_once(run, 3000)
    assert run.took <= deadline, run.took
    batch = {o.custom_id for o in run.outcomes if o.via == "batch"}
    fast_batch = sum(1 for i in range(1500) if f"f{i}" in batch)
    slow_batch = sum(1 for i in range(1500) if f"s{i}" in batch)
    fewest_fast = 1500 - 20.0 * (deadline - latency)  # 20: grok-4 nearly fits
    fewest_slow = 1500 - 5.0 * (deadline - latency)  # 1130
    assert fast_batch <= fewest_fast + 0.03 * 1500, fast_batch
    assert fewest_slow <= slow_batch <= fewest_slow * 1.03, slow_batch


async def test_a_batch_road_slower_than_the_deadline_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Batch answers take 200 s against a 75 s deadline: the run says so, and counts them.

    Once the batch road is known to be late, a line that may still make it online stays
    online (it would be some 200 s late by batch): the few the generous reading keeps past
    what the road then manages answer within a call's latency of the deadline, not minutes.
    """
    caplog.set_level(logging.WARNING, logger="grok_scheduler")
    deadline, latency = 75.0, 1.0
    run = await _run_auto(
        make_lines(LINES),
        _world(latency=latency),
        deadline,
        batch=BatchConfig(processing_delay=200.0),
        poll_max=30.0,
    )
    _each_line_once(run, LINES)
    assert run.took > deadline
    assert run.roads.late["batch"] == run.by_road["batch"] > 0
    online_at = [
        at for o, at in zip(run.outcomes, run.answered_at, strict=True) if o.via == "online"
    ]
    late_online = [at - deadline for at in online_at if at > deadline]
    assert run.roads.late["online"] == len(late_online)
    assert len(late_online) <= 0.005 * len(online_at), late_online
    assert all(late <= latency for late in late_online), late_online
    assert any("grok_scheduler.batch_late" in r.getMessage() for r in caplog.records)
