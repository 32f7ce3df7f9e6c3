"""The watchdog's wave and peer rules with the evidence of what silences became (unit level)."""

from __future__ import annotations

from grok_scheduler._guards._timeouts import CallTimeouts
from grok_scheduler._guards._watchdog import StreamWatch


def _answered(watch: StreamWatch, count: int, *, start: float = 0.0) -> None:
    """``count`` streams a tenth of a second apart, each answered in 0.3 s and whole."""
    for i in range(count):
        started = start + i * 0.1
        ticket = watch.waiting(started)
        watch.spoke(ticket, started + 0.3)
        watch.heard_first(ticket, started, started + 0.3)
        watch.gone(ticket, started + 0.5, completed=True)


def test_a_wave_late_in_a_run_is_counted_among_the_recent_streams() -> None:
    """200 quick streams, then 15 silent ones: 15% of the last 100, a wave (maximum).

    Counted over every stream the model ever opened, they were 7% and the fastest answers
    judged them (a slow wave late in a run was cut call by call).
    """
    watch = StreamWatch(first_byte_floor=2.0)
    _answered(watch, 200)
    silent = [watch.waiting(30.0 + i * 0.1) for i in range(15)]
    assert watch.first_byte_limit(started=31.4, now=40.0, ticket=silent[-1]) == 900.0


def test_the_plain_road_counts_a_wave_among_the_recent_calls() -> None:
    """The same on the plain road: 15 of the last 100 calls still running is a wave."""
    timeouts = CallTimeouts()
    for _ in range(200):
        ticket = timeouts.begin()
        timeouts.observe(0.3, 16)
        timeouts.end(ticket)
    running = [timeouts.begin() for _ in range(15)]
    assert timeouts.timeout_for(64, ticket=running[-1]) == 900.0
    assert timeouts.timeout_for(64) < 10.0


def test_a_refusal_after_a_long_wait_is_no_silent_peer() -> None:
    """Three calls refused (a 503) after 3 s: the server spoke; the silent call among answered
    peers gets the learned bound. Counted as silent peers, they kept it at the prior."""
    watch = StreamWatch(prior=90.0, first_byte_floor=2.0)
    _answered(watch, 20)
    mine = watch.waiting(10.0)
    for i in range(3):
        ticket = watch.waiting(10.0 + i * 0.1)
        watch.refused(ticket, 13.0 + i * 0.1)
        watch.gone(ticket, 13.0 + i * 0.1)
    _answered(watch, 20, start=10.5)
    assert watch.first_byte_limit(started=10.0, now=16.0, ticket=mine) == 2.0
