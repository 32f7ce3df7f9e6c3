"""`grok-scheduler run --report run.html`: the picture of the run, written beside the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import SimulatorThread  # pytest puts this folder on the path

from grok_scheduler.cli import main
from grok_scheduler.simulator import SimulatorConfig

pytest.importorskip("plotly")


@pytest.fixture(autouse=True)
def _local_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "local-simulator-key")


def _prompts(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"hi {i}"}) + "\n" for i in range(n))
    )
    return path


def test_report_is_written_at_the_end(tmp_path: Path) -> None:
    """--report writes one HTML file whose charts count every call the run sent."""
    config = SimulatorConfig(requests_per_second=None, latency=0.0)
    with SimulatorThread(config) as sim:
        source = _prompts(tmp_path / "in.jsonl", 15)
        report = tmp_path / "run.html"
        code = main(
            [
                "run",
                str(source),
                "-o",
                str(tmp_path / "out.jsonl"),
                "--base-url",
                sim.base_url,
                "--progress",
                "off",
                "--report",
                str(report),
            ]
        )
    assert code == 0
    page = report.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page
    assert "grok-4: 15 sent, 15 accepted, 0 429s, 0 retries" in page
    assert 'http-equiv="refresh"' not in page  # the final picture does not reload itself
    assert "local-simulator-key" not in page


def test_report_in_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --report path that cannot be written stops the run before anything is sent."""
    source = _prompts(tmp_path / "in.jsonl", 1)
    code = main(
        [
            "run",
            str(source),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--report",
            str(tmp_path / "nowhere" / "run.html"),
        ]
    )
    assert code == 2
    assert "--report" in capsys.readouterr().err
