"""The run's time series: per-second rows, coarser as they age, bounded, nothing lost or doubled."""

from __future__ import annotations

import math

import pytest

from grok_scheduler import APIError, RateLimitError
from grok_scheduler._observe._timeline import COLUMNS, LEVELS, Timeline
from grok_scheduler._wire._classify import LimitDimension, Verdict


def _429(dimension: LimitDimension | None) -> Verdict:
    return Verdict(RateLimitError("slow down", status_code=429), True, None, dimension, True)


_OTHER = Verdict(APIError("broken"), True, None, None, False)


def _probe(model: str) -> tuple[int, float | None, float | None]:
    return 3, 10.0, 60_000.0


def _contiguous(starts: tuple[float, ...], widths: tuple[float, ...]) -> bool:
    return all(math.isclose(starts[i] + widths[i], starts[i + 1]) for i in range(len(starts) - 1))


def test_one_row_per_second_with_every_count() -> None:
    """Events land in the second they happened, by kind, 429s by dimension, retries by cause."""
    timeline = Timeline(started_at=100.0, probe=_probe)
    timeline.sent("m", 100.2, 1)
    timeline.sent("m", 100.4, 2)
    timeline.accepted("m", 100.9, 120, 0.7)
    timeline.failed_attempt("m", 101.1, _429("tokens"))
    timeline.failed_attempt("m", 101.2, _429(None))
    timeline.failed_attempt("m", 101.3, _OTHER)
    timeline.retried("m", 101.3, "rate_limited")
    timeline.retried("m", 101.3, "client_error")  # not one of the five: counted as other
    series = timeline.snapshot(101.5).series("m")
    assert series.starts == (0.0, 1.0)
    assert series.widths == (1.0, 0.5)  # the second being counted has lasted half a second
    cols = series.columns
    assert cols["sent"] == (2.0, 0.0)
    assert cols["in_flight_peak"] == (3.0, 3.0)  # the probe said 3 at the first event
    assert cols["accepted"] == (1.0, 0.0)
    assert cols["tokens"] == (120.0, 0.0)
    assert cols["failed_attempts"] == (0.0, 3.0)
    assert cols["rate_limited_tokens"] == (0.0, 1.0)
    assert cols["rate_limited_unknown"] == (0.0, 1.0)
    assert cols["rate_limited_requests"] == (0.0, 0.0)
    assert cols["retries_rate_limited"] == (0.0, 1.0)
    assert cols["retries_other"] == (0.0, 1.0)
    assert cols["requests_per_second_limit"] == (10.0, 10.0)
    assert cols["tokens_per_minute_limit"] == (60_000.0, 60_000.0)
    # One call in (0.5, 1.0]: its median is halfway through that bucket.
    assert series.call_time_percentile(0.5)[0] == pytest.approx(0.75)
    assert series.call_time_percentile(0.5)[1] is None


def test_models_are_kept_apart() -> None:
    """Each model has its own rows."""
    timeline = Timeline()
    timeline.sent("a", 0.5, 1)
    timeline.sent("b", 0.6, 1)
    timeline.sent("b", 0.7, 2)
    snapshot = timeline.snapshot(1.0)
    assert snapshot.models == ("a", "b")
    assert snapshot.series("a").total("sent") == 1
    assert snapshot.series("b").total("sent") == 2
    assert len(snapshot.series("unknown")) == 0


def test_idle_seconds_are_filled_counts_zero_levels_kept() -> None:
    """Seconds without events read as zero counts with the last in-flight count and limits."""
    timeline = Timeline(probe=_probe)
    timeline.sent("m", 0.1, 5)
    timeline.sent("m", 4.5, 1)
    series = timeline.snapshot(5.0).series("m")
    assert series.starts == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert series.columns["sent"] == (1.0, 0.0, 0.0, 0.0, 1.0)
    assert series.columns["in_flight_peak"] == (5.0, 3.0, 3.0, 3.0, 3.0)
    assert series.columns["requests_per_second_limit"] == (10.0,) * 5


def test_unknown_limits_are_nan_not_zero() -> None:
    """A limit not known yet is NaN (a gap on a chart), never a misleading zero."""
    timeline = Timeline()
    timeline.sent("m", 0.0, 1)
    assert math.isnan(timeline.snapshot(1.0).series("m").columns["tokens_per_minute_limit"][0])


@pytest.mark.parametrize("hours", [0.05, 0.5, 3.0, 30.0])
def test_a_long_run_ages_into_coarser_rows_without_losing_or_doubling(hours: float) -> None:
    """Whatever the run's length, the rows add up to every event, cover the run once, in order."""
    timeline = Timeline(probe=_probe)
    seconds = int(hours * 3600)
    for second in range(seconds):
        timeline.sent("m", second + 0.25, 1)
        if second % 7 == 0:
            timeline.accepted("m", second + 0.5, 10, 0.3)
    series = timeline.snapshot(float(seconds)).series("m")
    assert series.total("sent") == seconds
    assert series.total("accepted") == len(range(0, seconds, 7))
    assert series.total("tokens") == 10 * len(range(0, seconds, 7))
    assert _contiguous(series.starts, series.widths)
    assert series.starts[0] == 0.0
    assert series.starts[-1] + series.widths[-1] == seconds
    # The last ten minutes stay sharp.
    assert series.widths[-600:] == (1.0,) * min(600, seconds)


def test_memory_is_bounded_whatever_the_length() -> None:
    """Rows are capped per level: a month costs no more than the caps allow."""
    timeline = Timeline(probe=_probe)
    # An event every 59 s still opens a new row at every level (each second, 10 s and minute
    # row gets one) and spans 40 days, past the coarsest level's 30: every cap is reached, with
    # a quarter of the events a 13 s step took.
    for second in range(0, 40 * 86400, 59):
        timeline.sent("m", float(second), 1)
    most_rows = sum(capacity for _, capacity in LEVELS)
    assert timeline.nbytes() <= most_rows * (8 + 4 * len(COLUMNS))
    assert timeline.nbytes() < 1_000_000


def test_a_snapshot_does_not_change_afterwards() -> None:
    """statistics() hands out a copy: later events do not show in it."""
    timeline = Timeline()
    timeline.sent("m", 0.1, 1)
    snapshot = timeline.snapshot(0.5)
    timeline.sent("m", 0.2, 1)
    timeline.sent("m", 3.0, 1)
    assert snapshot.series("m").total("sent") == 1
