"""``--via auto``'s options and summary: the expected batch delay, and a deadline missed said so."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from grok_scheduler.cli._auto_run import format_auto_summary
from grok_scheduler.cli._exit import UsageError
from grok_scheduler.cli._options import build_run_parser, options_from_args


def _parse(tmp_path: Path, *extra: str) -> Any:
    parser = argparse.ArgumentParser()
    build_run_parser(parser.add_subparsers())
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    args = parser.parse_args(["run", str(source), "-o", str(tmp_path / "o.jsonl"), *extra])
    return options_from_args(args, {"XAI_API_KEY": "xai-test"})


def test_batch_delay_goes_with_auto(tmp_path: Path) -> None:
    """--batch-delay is a duration for --via auto, refused without it."""
    options = _parse(tmp_path, "--via", "auto", "--deadline", "2h", "--batch-delay", "20m")
    assert (options.deadline, options.batch_delay) == (7200.0, 1200.0)
    assert _parse(tmp_path, "--via", "auto", "--deadline", "2h").batch_delay is None
    with pytest.raises(UsageError):
        _parse(tmp_path, "--batch-delay", "20m")


def _summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "status": "finished",
        "elapsed_seconds": 70.0,
        "deadline_seconds": 75.0,
        "deadline_met": True,
        "late_lines": {"online": 0, "batch": 0},
        "deadline_at_risk": None,
        "lines": 10,
        "succeeded": 10,
        "failed": 0,
        "skipped": 0,
        "online_lines": 6,
        "batch_lines": 4,
        "batches": ["b1"],
        "cost_usd": {"online": 0.1, "batch": 0.02, "same_work_online": 0.14},
    }
    summary.update(changes)
    return summary


def test_the_summary_says_whether_the_deadline_held() -> None:
    """Met; or missed with the late lines per road and why the plan saw it coming."""
    assert "(deadline 75.0 s, met)" in format_auto_summary(_summary())
    missed = format_auto_summary(
        _summary(
            deadline_met=False,
            late_lines={"online": 0, "batch": 4},
            deadline_at_risk="the batch road is expected to take 300 s",
        )
    )
    assert "missed: 0 online and 4 batch lines answered late" in missed
    assert "at risk     the batch road is expected to take 300 s" in missed
