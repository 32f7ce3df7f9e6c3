"""A bound learned from the first answers of a wave does not cut the rest of the wave.

The first answers of calls sent together are their fastest: twice the slowest of eight of them
cut healthy 30-60 s calls (a review found 34-85% of calls paid twice). A call in flight is cut
by the learned bound only once most of the calls sent up to it have ended.
"""

from __future__ import annotations

import random

from grok_scheduler._guards._timeouts import CallTimeouts


def _wave(timeouts: CallTimeouts, calls: int) -> list[int]:
    return [timeouts.begin() for _ in range(calls)]


def test_a_wave_still_running_is_not_judged_by_its_fastest_answers() -> None:
    timeouts = CallTimeouts(maximum=900.0)
    tickets = _wave(timeouts, 100)
    for ticket in tickets[:8]:  # the eight fastest answer after about 10 s
        timeouts.observe(10.0, 64)
        timeouts.end(ticket)
    learned = timeouts.timeout_for(64)  # a call sent now, judged on what was learned
    assert learned < 30.0
    # A call of the wave, 92 of its peers still running: not cut short of the maximum.
    assert timeouts.timeout_for(64, ticket=tickets[50]) == 900.0


def test_once_the_wave_has_ended_a_straggler_is_cut_at_the_learned_bound() -> None:
    timeouts = CallTimeouts(maximum=900.0)
    tickets = _wave(timeouts, 100)
    for ticket in tickets[:99]:
        timeouts.observe(10.0, 64)
        timeouts.end(ticket)
    hung = tickets[99]  # the one call left is an outlier among its peers
    assert timeouts.timeout_for(64, ticket=hung) == timeouts.timeout_for(64) < 30.0


def test_a_lone_first_call_keeps_the_prior() -> None:
    timeouts = CallTimeouts(maximum=900.0)
    ticket = timeouts.begin()
    assert timeouts.timeout_for(64, ticket=ticket) == timeouts.timeout_for(64) < 900.0


def test_the_wave_count_is_the_same_whichever_way_it_is_counted() -> None:
    """Few calls in flight are counted one by one, many by probing the span: the same verdict
    for every ticket, in flight or not, across both ways (random waves, ends in any order)."""
    rng = random.Random(7)
    for _ in range(30):
        timeouts = CallTimeouts(maximum=900.0)
        tickets = [timeouts.begin() for _ in range(rng.randint(1, 400))]
        for ticket in rng.sample(tickets, rng.randint(0, len(tickets))):
            timeouts.end(ticket)
        running = set(timeouts._running)
        for ticket in tickets:
            since = max(1, ticket - 100)
            probed = sum(1 for other in range(since, ticket + 1) if other in running)
            expected = probed <= max(1.0, 0.1 * min(ticket, 100))
            assert timeouts._settled(ticket) is expected
