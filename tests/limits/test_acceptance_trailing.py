"""The acceptance log's running sums of the last seconds agree with a scan of its records.

The rate controller asks for the last 10 s on every tick; the log answers from sums kept as
records arrive, change fate (an answer's real tokens, a 429) and age out. Whatever the order of
those events (the clock set back included), the sums must say what a scan says.
"""

from __future__ import annotations

import random

import pytest

from grok_scheduler._limits._acceptance import AcceptanceLog, Dimension, SendRecord

_STEPS = (0.001, 0.01, 0.03, 0.2, 1.0, 7.0, 40.0)  # 40 s steps age records out of history


@pytest.mark.parametrize("seed", range(40))
def test_trailing_sums_are_the_window_scan(seed: int) -> None:
    rnd = random.Random(seed)
    log = AcceptanceLog()
    now = 0.0
    open_calls: list[tuple[SendRecord, int]] = []
    for _ in range(600):
        # Mostly forward; now and then the clock goes back a little.
        now += rnd.choice(_STEPS) if rnd.random() < 0.9 else -3.0 * rnd.random()
        event = rnd.random()
        if event < 0.5:
            reserved = rnd.randint(1, 500)
            open_calls.append((log.sent(reserved, now), reserved))
        elif event < 0.7 and open_calls:
            record, reserved = open_calls.pop(rnd.randrange(len(open_calls)))
            log.answered(record, reserved, rnd.randint(0, 900))
        elif event < 0.8 and open_calls:
            record, reserved = open_calls.pop(rnd.randrange(len(open_calls)))
            dimension: Dimension = rnd.choice(("requests", "tokens"))
            log.rejected(record, dimension, reserved, now)
        else:
            span = rnd.choice((10.0, 10.0, 10.0, 2.0, 30.0))
            assert log.trailing(span, now) == log.window(now - span, now + 1.0)


def test_sent_rate_follows_fates_booked_after_the_query() -> None:
    """A 429 or an answer booked between two ticks shows in the next tick's figures."""
    log = AcceptanceLog()
    first = log.sent(100, 0.0)
    second = log.sent(100, 0.5)
    assert log.sent_rate("requests", 10.0, 1.0) == pytest.approx(0.2)
    log.rejected(first, "tokens", 100, 1.1)
    log.answered(second, 100, 250)
    assert log.trailing(10.0, 1.2).rejected_tokens == 1
    assert log.sent_rate("tokens", 10.0, 1.2) == pytest.approx(250 / 10.0 * 60.0)
    # ...and a record leaves the sums once the window has moved past it.
    assert log.sent_rate("requests", 10.0, 10.2) == pytest.approx(0.1)
    assert log.tokens_per_call(10.0, 10.6) is None
