"""The evidence that tells a storm of hangs from a slow wave: what the silences became."""

from __future__ import annotations

from grok_scheduler._guards._silences import MIN_HOLD, SilenceRecords

BOUND = 2.0  # a learned first-byte bound; its silences are watched MIN_HOLD (20 s)


def _records(first_bytes: list[float | None]) -> SilenceRecords:
    """One stream a second from t=0; None never answers (still open)."""
    records = SilenceRecords()
    for second, first_byte in enumerate(first_bytes):
        silence = records.opened(float(second))
        if first_byte is not None:
            silence.spoke(second + first_byte)
            silence.end(second + first_byte + 1.0, completed=True)
    return records


def test_silences_that_never_end_among_quick_answers_are_hangs() -> None:
    """7 of 10 answer in 0.3 s, 3 stay silent for 20 s and more: a storm of hangs."""
    records = _records([0.3, None, 0.3, 0.3, None, 0.3, 0.3, None, 0.3, 0.3])
    assert records.hangs_past(BOUND, 9.0 + MIN_HOLD, first_byte=True)


def test_silences_not_yet_watched_for_the_hold_say_nothing() -> None:
    """The same streams 5 s earlier: the last silences were watched under 20 s."""
    records = _records([0.3, None, 0.3, 0.3, None, 0.3, 0.3, None, 0.3, 0.3])
    assert not records.hangs_past(BOUND, 3.0 + MIN_HOLD, first_byte=True)


def test_silences_past_the_bound_that_answered_later_are_a_slow_tail() -> None:
    """As many silences past 2 s, and a third of them answered at 6-12 s: slow, not hung."""
    waits: list[float | None] = [0.3, 6.0, 0.3, None, 12.0, 0.3, None, 0.3, 9.0, None] * 2
    records = _records(waits)
    assert not records.hangs_past(BOUND, 19.0 + MIN_HOLD, first_byte=True)


def test_a_slow_wave_with_a_few_fast_answers_is_not_a_storm() -> None:
    """3 cached answers, 37 still thinking after 20 s: most are silent, the model is slow."""
    records = _records([0.3, 0.3, 0.3] + [None] * 37)
    assert not records.hangs_past(BOUND, 39.0 + MIN_HOLD, first_byte=True)


def test_streams_cut_early_are_not_evidence() -> None:
    """Silences cut at 2 s: nobody knows what they would have become (no self-fulfilment)."""
    records = SilenceRecords()
    for second in range(10):
        silence = records.opened(float(second))
        if second % 3 == 1:
            silence.end(second + 2.0, completed=False)  # cut at the bound
        else:
            silence.spoke(second + 0.3)
            silence.end(second + 1.3, completed=True)
    assert not records.hangs_past(BOUND, 9.0 + MIN_HOLD, first_byte=True)


def test_a_gap_that_never_ends_mid_stream_is_a_hang() -> None:
    """Streams that opened and went silent mid-stream for 20 s, among whole quick streams."""
    records = SilenceRecords()
    for second in range(10):
        silence = records.opened(float(second))
        silence.spoke(second + 0.2)
        if second % 3 != 1:
            silence.spoke(second + 0.4)
            silence.end(second + 0.6, completed=True)
    now = 9.0 + MIN_HOLD
    assert records.hangs_past(BOUND, now, first_byte=False)
    assert not records.hangs_past(BOUND, now, first_byte=True)


def test_a_majority_alive_with_silences_that_ended_is_no_storm() -> None:
    """30 of 40 answer quickly; of the 10 silent past 2 s, 3 answered later (at 6-12 s).

    Most are alive, and 3 dead would do; but 3 in 10 silences ending says they end.
    """
    waits: list[float | None] = [0.3] * 30 + [6.0, 9.0, 12.0] + [None] * 7
    records = _records(waits)
    assert not records.hangs_past(BOUND, 39.0 + MIN_HOLD, first_byte=True)
    assert _records([0.3] * 30 + [None] * 10).hangs_past(BOUND, 39.0 + MIN_HOLD, first_byte=True)


def test_a_storm_is_confirmed_by_the_cut_jobs_answering_promptly_when_tried_again() -> None:
    """Silences that look like hangs are cut three at a time until the cut jobs tell: a
    storm's hangs were bad luck (their retries answer promptly), a slow minority's thinks
    are slow again (then one probe at a time)."""
    now = 9.0 + MIN_HOLD
    storm = _records([0.3, None, 0.3, 0.3, None, 0.3, 0.3, None, 0.3, 0.3])
    assert storm.storm(BOUND, now, first_byte=True)
    for _ in range(3):
        storm.cut_made(now)
    assert not storm.storm(BOUND, now, first_byte=True)  # three probes out
    storm.cut_told(prompt=True)
    storm.cut_told(prompt=True)
    storm.cut_made(now)
    storm.cut_made(now)
    assert storm.storm(BOUND, now, first_byte=True)  # confirmed: no limit

    slow = _records([0.3, None, 0.3, 0.3, None, 0.3, 0.3, None, 0.3, 0.3])
    for _ in range(3):
        slow.cut_made(now)
        slow.cut_told(prompt=False)
    assert slow.storm(BOUND, now, first_byte=True)  # one probe at a time
    slow.cut_made(now)
    assert not slow.storm(BOUND, now, first_byte=True)
