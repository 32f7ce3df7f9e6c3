"""The slow-start bound asked at the very instant it may grow: it grows, or says a later time.

``on_saturated`` returns when the gate should look again, and the gate looks again at once when
that is not later than now. Compared as elapsed times, ``now - last < interval`` can hold while
``last + interval == now`` in float arithmetic: the bound then neither grew nor named a later
instant, and the gate asked again forever without yielding (a frozen loop on a FakeClock: 300
streamed jobs at 5 s stalled in review).
"""

from __future__ import annotations

from grok_scheduler._limits._concurrency import ConcurrencyLimit


def test_the_bound_grows_when_asked_exactly_one_interval_after_it_last_grew() -> None:
    """Last grown at 5.459 s with 2.523 s calls: asked at 5.459 + 2.523, it doubles again."""
    last, interval = 5.459, 2.523
    now = last + interval
    assert now - last < interval  # the float trap this test is about
    limit = ConcurrencyLimit(fixed=None, initial=32)
    limit.observe(interval)
    assert limit.on_saturated(last) == last and limit.limit(None) == 64
    assert limit.on_saturated(now) == now
    assert limit.limit(None) == 128


def test_the_quiet_after_a_429_ends_at_its_instant() -> None:
    """A 429 at 1.845 s: asked at 1.845 + 2 s, the bound grows instead of answering "now"."""
    rate_limited_at = 1.845
    now = rate_limited_at + 2.0
    assert now - rate_limited_at < 2.0  # the float trap this test is about
    limit = ConcurrencyLimit(fixed=None, initial=32)
    limit.on_rate_limited(rate_limited_at)
    assert limit.on_saturated(now) == now
    assert limit.limit(None) == 64
