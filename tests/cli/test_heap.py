"""The commands' collector tuning holds during their run only."""

from __future__ import annotations

import gc

from grok_scheduler.cli._heap import YOUNG_THRESHOLD, tuned_collector


def test_the_collector_is_tuned_inside_and_put_back_after() -> None:
    before = gc.get_threshold()
    with tuned_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        # What start-up built is out of the collector's walks while the run lasts.
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_in_the_run_still_puts_the_collector_back() -> None:
    before = gc.get_threshold()
    try:
        with tuned_collector():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
