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
        watch.observe(-1.0, 0.1)  # its longest gap, taught once the stream is whole


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


def test_only_a_watchdog_cut_keeps_a_place_in_a_wave_of_gaps_until_forgiven() -> None:
    """A stream dropped mid-stream (a proxy's idle timeout) is no thinking peer; a stream the
    watchdog cut is, until its job answers promptly when tried again."""
    watch = StreamWatch(first_byte_floor=2.0, gap_floor=2.0)
    _answered(watch, 100)
    ended = []
    for i in range(15):  # opened, spoke once, then silent 30 s and ended unfinished
        started = 20.0 + i * 0.1
        ticket = watch.waiting(started)
        watch.spoke(ticket, started + 0.3)
        watch.heard_first(ticket, started, started + 0.3)
        ended.append((ticket, started))
    for ticket, started in ended:
        watch.gone(ticket, started + 30.0, cut=False)
    mine = watch.waiting(60.0)
    watch.spoke(mine, 60.3)
    watch.heard_first(mine, 60.0, 60.3)
    assert watch.gap_limit(ticket=mine, now=65.0) == 2.0  # dropped: no wave
    cut = StreamWatch(first_byte_floor=2.0, gap_floor=2.0)
    _answered(cut, 100)
    tickets = []
    for i in range(15):
        started = 20.0 + i * 0.1
        ticket = cut.waiting(started)
        cut.spoke(ticket, started + 0.3)
        cut.heard_first(ticket, started, started + 0.3)
        cut.gone(ticket, started + 30.0, cut=True)
        tickets.append((ticket, started))
    mine = cut.waiting(60.0)
    cut.spoke(mine, 60.3)
    cut.heard_first(mine, 60.0, 60.3)
    assert cut.gap_limit(ticket=mine, now=65.0) == 900.0  # cut: still a wave of thinkers
    for ticket, started in tickets:
        cut.forgive(ticket, started)
    assert cut.gap_limit(ticket=mine, now=65.0) == 2.0  # their jobs answered promptly
