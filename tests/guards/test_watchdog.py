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


def test_a_first_byte_is_learned_when_it_arrives() -> None:
    """Three first answers, before any stream ended, teach the bound: the floor at 0.5 s."""
    watch = StreamWatch(prior=30.0, first_byte_floor=2.0)
    for started in (0.0, 0.04, 0.08):
        watch.heard_first(watch.waiting(started), started, started + 0.5)
    assert watch.first_byte_limit() == 2.0


def test_silent_peers_keep_the_prior_for_a_slow_models_first_wave() -> None:
    """Forty calls sent together, three fast ones answered: the rest are slow, not hung."""
    watch = StreamWatch(prior=30.0, first_byte_floor=2.0)
    tickets = [watch.waiting(0.0) for _ in range(40)]
    for ticket, seconds in zip(tickets[:3], (1.0, 1.2, 1.3), strict=True):
        watch.heard_first(ticket, 0.0, seconds)
    mine = tickets[3]
    assert watch.first_byte_limit(started=0.0, now=2.6, ticket=mine) == 30.0
    # Without the attempt's context (no peers known) the learned bound: 2 x 1.3 s.
    assert watch.first_byte_limit() == 2.6


def test_a_lone_silent_call_among_answered_peers_gets_the_learned_bound() -> None:
    """Calls sent with it answered in 0.5 s; it is the one still silent: cut at the floor."""
    watch = StreamWatch(prior=30.0, first_byte_floor=2.0)
    mine = watch.waiting(0.0)
    for i in range(20):
        started = i * 0.04
        watch.heard_first(watch.waiting(started), started, started + 0.5)
    assert watch.first_byte_limit(started=0.0, now=2.0, ticket=mine) == 2.0


def test_a_learned_bound_above_the_prior_is_never_lowered_to_it() -> None:
    """A slow model (60 s first bytes) keeps its learned 120 s even while peers are silent."""
    watch = StreamWatch(prior=30.0)
    for _ in range(5):
        watch.heard_first(watch.waiting(0.0), 0.0, 60.0)
    silent = [watch.waiting(100.0) for _ in range(10)]
    assert watch.first_byte_limit(started=100.0, now=400.0, ticket=silent[0]) == 120.0


def test_checks_double_from_the_floor_up_to_the_bound() -> None:
    """A silence is asked about at 2, 4, 8, 16 s and then at the bound: never polled."""
    watch = StreamWatch(first_byte_floor=2.0, gap_floor=2.0)
    checks, silent = [], 0.0
    while silent < 30.0:
        silent = watch.next_check(silent, 30.0)
        checks.append(silent)
    assert checks == [2.0, 4.0, 8.0, 16.0, 30.0]
