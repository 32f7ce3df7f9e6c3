"""The first 429's estimate: the least token-bucket rate that explains what the server took."""

from __future__ import annotations

import pytest

from grok_scheduler._limits._first_429 import least_bucket_rate


def _taken_until_refused(
    send_times: list[float], rate: float, burst_seconds: float = 1.0
) -> list[tuple[float, int]]:
    """What a bucket of ``rate`` (full at 0, ``burst_seconds`` of it) took before refusing."""
    capacity = rate * burst_seconds
    level, last, taken = capacity, 0.0, []
    for at in send_times:
        level = min(capacity, level + rate * (at - last))
        last = at
        if level < 1.0:
            break
        level -= 1.0
        taken.append((at, 1))
    return taken


def _flat_out(per_second: float, seconds: float) -> list[float]:
    return [i / per_second for i in range(int(per_second * seconds))]


def _ramp(start: float, doubling: float, seconds: float) -> list[float]:
    times, now = [], 0.0
    while now < seconds:
        times.append(now)
        now += 1.0 / (start * 2.0 ** (now / doubling))
    return times


@pytest.mark.parametrize("limit", [2.0, 10.0, 30.0, 200.0])
@pytest.mark.parametrize(
    "sends",
    [
        pytest.param(lambda: _flat_out(400.0, 5.0), id="flat-out"),
        pytest.param(lambda: _ramp(4.0, 0.25, 5.0), id="ramp"),
        pytest.param(lambda: [0.0] * 5 + [1.5 + t for t in _flat_out(400.0, 3.0)], id="idle-gap"),
    ],
)
def test_the_estimate_is_the_limit_within_about_a_call(limit: float, sends: object) -> None:
    """Flat out, ramping, or after an idle gap: the estimate is the bucket's rate, never more
    than a call's worth above it (the previous rule, the last second's count, read 10 as 18)."""
    times = sends()  # type: ignore[operator]
    taken = _taken_until_refused(times, limit)
    assert len(taken) < len(times), "the bucket must have refused one"
    estimate = least_bucket_rate(taken, 0.0, 1.0)
    assert estimate is not None
    # A rate lower by about a call per burst would have refused earlier (slack: half a call).
    assert limit - 1.5 <= estimate <= limit * 1.001


def test_nothing_taken_says_nothing() -> None:
    assert least_bucket_rate([], 0.0, 1.0) is None
    assert least_bucket_rate([(0.5, 0)], 0.0, 1.0) is None


def test_a_burst_alone_reads_as_its_size_per_burst() -> None:
    """Ten calls at once and nothing more: at least ten per second's burst explains them."""
    estimate = least_bucket_rate([(0.0, 10)], 0.0, 1.0)
    assert estimate == pytest.approx(9.5, abs=0.01)  # half a call of slack for early arrivals
