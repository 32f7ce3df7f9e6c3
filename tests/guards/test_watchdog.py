"""The hang watchdog's bounds: prior, floor, learned percentile with headroom, doubling."""

from __future__ import annotations

from grok_scheduler._guards._watchdog import StreamWatch


def test_prior_until_a_few_streams_were_seen() -> None:
    """Before three complete streams the generous prior holds."""
    watch = StreamWatch(prior=30.0)
    watch.observe(0.05, 0.01)
    assert watch.first_byte_limit() == 30.0


def test_fast_model_is_bounded_by_the_floor() -> None:
    """At 50 ms latencies a hang is cut at the floor: within seconds."""
    watch = StreamWatch(first_byte_floor=2.0, gap_floor=2.0)
    for _ in range(20):
        watch.observe(0.05, 0.02)
    assert watch.first_byte_limit() == 2.0
    assert watch.gap_limit() == 2.0


def test_slow_model_gets_headroom_over_its_slowest() -> None:
    """At 60 s to the first byte, the bound is the high percentile times headroom."""
    watch = StreamWatch(headroom=2.0)
    for seconds in (55.0, 58.0, 60.0, 61.0):
        watch.observe(seconds, 1.0)
    assert watch.first_byte_limit() == 122.0


def test_each_cut_doubles_the_next_bound_up_to_the_maximum() -> None:
    """A job cut for silence gets twice the time on its next attempt."""
    watch = StreamWatch(prior=30.0, maximum=100.0)
    assert watch.first_byte_limit(cut_before=1) == 60.0
    assert watch.first_byte_limit(cut_before=5) == 100.0
