"""The rate-matrix benchmark's grid: its ideals and targets are issue 12's (no sockets here)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def matrix() -> ModuleType:
    saved = list(sys.path)  # the script adds its own folders: keep them out of other tests
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("rate_matrix")
    finally:
        sys.path[:] = saved


def test_ideal_counts_the_servers_full_bucket_and_the_last_answer(matrix: ModuleType) -> None:
    """180 jobs at 10 rps: 10 go in the first burst, 170 at the refill, then one latency."""
    assert matrix.request_ideal(10.0, 180, 3.0) == pytest.approx(17.0 + 3.0)
    assert matrix.request_ideal(10.0, 160, 1.0, share=0.6) == pytest.approx(150 / 6 + 1.0)


def test_the_grid_holds_the_issues_cells_and_targets(matrix: ModuleType) -> None:
    """2 latencies x 5 evidences x 3 limits, plus five extra worlds, with the issue's figures."""
    cells = matrix.grid(1.0)
    assert len(cells) == 2 * 5 * 3 + 5
    targets = {(c.group, c.name): (c.target_ratio, c.target_429) for c in cells}
    assert targets[("3s", "none / limit none")] == (1.20, 0.07)
    assert targets[("0.2s", "xai-body / limit 2x")] == (1.05, 0.02)
    assert targets[("3s", "ietf / limit right")] == (1.10, 0.03)
    reach = [c for c in cells if c.reach]
    assert len(reach) == 1 and reach[0].target_ratio == 0.90


def test_two_models_have_the_same_ideal(matrix: ModuleType) -> None:
    """Jobs are split 3:1 for limits 3x apart, so each model's own ideal is the same."""
    (two,) = [c for c in matrix.grid(1.0) if "two models" in c.name]
    ideal = two.ideal({})
    assert ideal["grok-fast"] == pytest.approx(ideal["grok-slow"])
    assert set(two.jobs) == set(two.client_rps)
