"""The run report: a recorded run (virtual time, 429s, a limit that halves) drawn as HTML."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from fakes import LimitedServer, make_scheduler

from grok_scheduler import FakeClock, RetryPolicy, SchedulerStatistics
from grok_scheduler._observe._report import MissingExtraError, render_report, report_figures

pytest.importorskip("plotly")


async def _recorded_run(clock: FakeClock) -> tuple[SchedulerStatistics, LimitedServer]:
    """120 jobs at a limit configured too high; the server's limit halves half-way."""
    server = LimitedServer(clock, rps=8.0, latency=0.2)
    async with make_scheduler(
        clock,
        server,
        requests_per_second=20.0,
        max_concurrency=16,
        retry=RetryPolicy(base_delay=0.05, max_delay=1.0, max_attempts=20),
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(120)]
        first = asyncio.ensure_future(asyncio.wait(futures[:60]))
        await clock.run_until_done(cast("asyncio.Future[object]", first), limit=600.0)
        server.rps = 4.0
        rest = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(cast("asyncio.Future[object]", rest), limit=600.0)
        assert all(f.exception() is None for f in futures)
        return scheduler.statistics(), server


async def test_the_series_holds_the_whole_run() -> None:
    """The time series adds up to the run's counters and shows the limit learned downwards."""
    clock = FakeClock()
    stats, server = await _recorded_run(clock)
    assert stats.timeline is not None
    assert stats.timeline.models == ("grok-4",)
    series = stats.timeline.series("grok-4")
    assert series.total("sent") == stats.dispatched == len(server.sent)
    assert series.total("accepted") == stats.completed == 120
    assert stats.rate_limited > 0
    rejected = (
        series.total("rate_limited_requests")
        + series.total("rate_limited_tokens")
        + series.total("rate_limited_unknown")
    )
    assert rejected == stats.rate_limited == server.rejected
    assert series.total("retries_rate_limited") == stats.retries
    assert series.total("tokens") == stats.total_tokens
    assert max(series.columns["in_flight_peak"]) >= 1
    limits = [v for v in series.columns["requests_per_second_limit"] if not math.isnan(v)]
    # It started at the configured 20/s and the 429s taught it a lower pace (how much lower is
    # the rate controller's business, tested under tests/limits/).
    assert limits[0] == pytest.approx(20.0)
    assert limits[-1] < 20.0
    # The rows cover the run second by second, the last one up to the snapshot.
    assert set(series.widths[:-1]) == {1.0}
    assert series.starts[-1] + series.widths[-1] == pytest.approx(stats.timeline.now)


async def test_the_report_draws_the_series(tmp_path: Path) -> None:
    """Each chart's lines are the series' own numbers; the page is whole and offline."""
    clock = FakeClock()
    stats, _ = await _recorded_run(clock)
    assert stats.timeline is not None
    series = stats.timeline.series("grok-4")
    [figure] = report_figures(stats)
    whole = len(series) - 1  # the second still being counted is left out of the charts
    traces: dict[str, Any] = {trace.name: trace for trace in figure.data}
    # Each line repeats its last value once at the end of the last row (the step's width).
    assert list(traces["sent/s"].y)[:-1] == list(series.per_second("sent"))[:whole]
    assert list(traces["accepted/s"].y)[:-1] == list(series.per_second("accepted"))[:whole]
    assert series.columns["rate_limited_requests"][-1] == 0  # none dropped with that second
    assert sum(traces["429s"].customdata) == stats.rate_limited
    assert sum(traces["retries"].customdata) == stats.retries
    assert next(v for v in traces["limit (requests/s)"].y if v is not None) == pytest.approx(20.0)
    assert {"tokens/min", "limit (tokens/min)", "in flight", "call time p90"} <= set(traces)

    page = render_report(stats)
    assert page.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in page
    # plotly.js is inlined (some MB), nothing is fetched when the page is opened.
    assert len(page) > 1_000_000
    assert "<script src=" not in page
    assert f"<th>completed</th><td>{stats.completed}</td>" in page
    assert 'http-equiv="refresh"' not in page
    assert 'http-equiv="refresh" content="5"' in render_report(stats, refresh_seconds=5)


async def test_write_report_writes_one_file(tmp_path: Path) -> None:
    """Scheduler.write_report replaces the file whole and leaves nothing beside it."""
    clock = FakeClock()
    server = LimitedServer(clock, rps=50.0, latency=0.1)
    target = tmp_path / "run.html"
    target.write_text("old")
    async with make_scheduler(clock, server) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(10)]
        done = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(cast("asyncio.Future[object]", done), limit=60.0)
        scheduler.write_report(target)
    text, names = await asyncio.to_thread(
        lambda: (target.read_text(encoding="utf-8"), [p.name for p in tmp_path.iterdir()])
    )
    assert "Plotly.newPlot" in text
    assert names == ["run.html"]


async def test_a_report_without_plotly_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the extra, writing a report fails with the pip command; the run is unaffected."""
    clock = FakeClock()
    stats, _ = await _recorded_run(clock)
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    monkeypatch.setitem(sys.modules, "plotly.subplots", None)
    with pytest.raises(MissingExtraError, match=r"grok-scheduler\[report\]"):
        render_report(stats)
    with pytest.raises(ImportError):
        render_report(stats)
