"""What the progress display and the summary show: rates, limits, counts and notices."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from grok_scheduler.cli import RunOptions
from grok_scheduler.cli._bulk import BulkRun
from grok_scheduler.cli._progress import LiveProgress, PlainProgress, format_limit, plural


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (22.2212, "rps", "22.2 rps"),
        (60.0, "rps", "60 rps"),
        (0.25, "rps", "0.2 rps"),
        (399_812.7, "tpm", "399813 tpm"),
        (None, "tpm", "no tpm limit"),
    ],
)
def test_limits_print_rounded(value: float | None, unit: str, text: str) -> None:
    """A learned limit prints with one decimal at most ("22.2 rps", not "22.2212 rps")."""
    assert format_limit(value, unit) == text


def test_counts_agree_with_their_noun() -> None:
    """Counts agree with their noun: 1 call, 2 calls, 1 retry, 3 retries."""
    assert plural(1, "call") == "1 call" and plural(2, "call") == "2 calls"
    assert plural(1, "retry", "retries") == "1 retry"
    assert plural(3, "retry", "retries") == "3 retries"


def test_notices_show_in_the_live_display() -> None:
    """A notice (Ctrl-C, a warning) printed while the live display runs is in its output."""
    stream = io.StringIO()
    live = LiveProgress(stream)
    live.start()
    live.notice("grok-scheduler: warning: interrupted: finishing 1 call in flight")
    live.stop(None)
    assert "finishing 1 call in flight" in stream.getvalue()


def test_plain_notices_are_lines() -> None:
    """Without a live display a notice is one line on the stream."""
    stream = io.StringIO()
    PlainProgress(stream).notice("grok-scheduler: hello")
    assert stream.getvalue() == "grok-scheduler: hello\n"


def test_rate_and_eta_leave_out_lines_skipped_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 lines done before and 10 answered in 1 s: 10 lines/s, and the ETA follows it."""
    clock = iter([100.0, 101.0])  # virtual time: the run starts, then one second later
    monkeypatch.setattr("grok_scheduler.cli._bulk.time.monotonic", lambda: next(clock))
    options = RunOptions(input="in.jsonl", output=tmp_path / "o", api_key="k", progress="off")
    bulk = BulkRun(options, io.StringIO())
    bulk.counters.skipped, bulk.counters.succeeded, bulk.counters.total = 1000, 10, 1110
    snapshot = bulk._snapshot()
    assert snapshot.rate == pytest.approx(10.0)
    assert snapshot.eta == pytest.approx(10.0)  # 100 lines left at 10/s
