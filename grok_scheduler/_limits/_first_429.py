"""What the first 429s of a run imply, before any episode can be measured.

The first 429 says the server's bucket just ran dry. Counting what it took "in the last
second" (the previous rule) counts its starting burst as rate and reads 10 rps as 18; this
module asks instead for the least refill rate of a token bucket, full when the pool opened and
holding one second of its rate (servers size their bursts so), that explains every call the
server took until the refusal. That is right within about a call whether the client ramped up,
idled or ran flat out, and it is used twice: with nothing known it is the rate
(:meth:`FirstEstimates.provisional`); with a configured request rate the first 429 cuts to it
at once (:meth:`FirstEstimates.configured_cut`) instead of a gentle cut per 429 while a
measurement builds up. Tokens keep the minute's count (a minute is their burst).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ._acceptance import SLOT, Dimension
from ._base import Limiter, RateLimitHeaders
from ._episode import DimensionState, Meter

#: How an estimate is applied: ``(dimension, rate, now, reason)`` (the controller's ``_set``).
Apply = Callable[[Dimension, float, float, str], None]

__all__ = ["FirstEstimates", "estimate_pending", "least_bucket_rate"]

# Seconds of its rate a server's request bucket holds (servers size their bursts so).
SERVER_BURST = 1.0
_DEEPEST_CUT = 0.5
# A call may arrive this much early against a bucket model (jitter, slot rounding): half a
# call, or at low rates this many seconds of the rate (half a call of 2 is a quarter of them,
# and a 2 rps bucket read as 1.5 meant ~35 s of growth to climb out).
_BUCKET_SLACK = 0.5
_BUCKET_SLACK_SECONDS = 0.1
_SEARCH_STEPS = 40


def least_bucket_rate(
    taken: list[tuple[float, int]], start: float, burst_seconds: float
) -> float | None:
    """The least refill rate of a token bucket that explains what a server took.

    The bucket is full at ``start`` and holds ``burst_seconds`` of its rate; ``taken`` is
    ``(send time, calls taken)`` in time order, up to the server's first refusal. A slower
    bucket would have run dry before one of them, so this is the lowest rate the evidence
    allows. The refusal itself says the bucket was empty then, so when the client kept the
    server busy up to it, the estimate is the rate within about one call. Unlike "what it took
    in the last second", it does not count the starting burst as rate, nor refill the bucket
    could not hold while the client was sending slower (a first-contact ramp). None: nothing
    was taken.
    """
    total = sum(count for _, count in taken)
    if total <= 0:
        return None

    def explains(rate: float) -> bool:
        capacity = rate * burst_seconds
        slack = min(_BUCKET_SLACK, _BUCKET_SLACK_SECONDS * rate)
        level, last = capacity, start
        for at, count in taken:
            level = min(capacity, level + rate * max(0.0, at - last)) - count
            last = at
            if level < -slack:
                return False
        return True

    low, high = 0.0, total / burst_seconds  # at ``high`` the burst alone takes everything
    for _ in range(_SEARCH_STEPS):
        middle = 0.5 * (low + high)
        if explains(middle):
            high = middle
        else:
            low = middle
    return high


def estimate_pending(dimension: Dimension, state: DimensionState) -> bool:
    """A configured request rate met its first 429 and was not estimated from it yet."""
    return (
        dimension == "requests"
        and not state.estimated
        and not state.stated
        and state.configured is not None
        and state.learned is None
        and state.rate is not None
        and state.last_429 > -math.inf
    )


class FirstEstimates:
    """The estimates of one model's first 429s, from its sends since the pool opened."""

    __slots__ = ("_limiter", "_meter", "opened_at")

    def __init__(self, meter: Meter, limiter: Limiter, now: float) -> None:
        self._meter = meter
        self._limiter = limiter
        self.opened_at = now  # moved to the pool's opening once first contact is over

    def __repr__(self) -> str:
        return f"FirstEstimates(opened_at={self.opened_at:.3f})"

    def open(self, now: float, first_sent: float | None) -> None:
        """The pool opens at ``now``. The server's bucket was full when the first-contact call
        left (``first_sent``), which it took too: counted from the pool's opening, a 2 rps
        bucket that took one call of its two reads as 0.5 rps."""
        self.opened_at = now if first_sent is None else min(now, first_sent)

    def least_rate(self, state: DimensionState) -> float | None:
        """The least request rate explaining what the server took from the pool's opening up
        to the episode's first refusal (None: not measurable here)."""
        start = state.episode_start
        if start < self.opened_at:
            return None
        slots = self._meter.slots(self.opened_at, start + SLOT)
        return None if slots is None else least_bucket_rate(slots, self.opened_at, SERVER_BURST)

    def configured_cut(
        self, dimension: Dimension, state: DimensionState, now: float
    ) -> float | None:
        """The rate a configured request rate is cut to at its first 429, once (None: no cut).

        Waits until the burst's refusals are back; records the estimate as ``learned``.
        """
        if not estimate_pending(dimension, state):
            return None
        if now - state.episode_start < self._meter.lag():
            return None  # the refusals of the burst are still on their way
        state.estimated = True
        current = state.rate
        estimate = self.least_rate(state)
        if estimate is None or current is None:
            return None
        cut = max(state.floor, _DEEPEST_CUT * (state.episode_rate or current), estimate)
        if cut >= current:
            return None
        state.learned = estimate
        return cut

    def provisional(self, dimension: Dimension, state: DimensionState) -> float | None:
        """With nothing known (or a header's reading refused): the rate to run at until a
        measurement exists (None: no count yet; 0.0: nothing was taken, which says nothing)."""
        if dimension == "requests" and state.rate is None:
            estimate = self.least_rate(state)
            if estimate is not None:
                return estimate
        window = 1.0 if dimension == "requests" else 60.0
        start = state.episode_start
        burst = self._meter.counts(dimension, start - window, start + SLOT)
        if burst is None:
            return None
        return float(burst.accepted) if dimension == "requests" else max(0.0, burst.tokens)

    def cut_configured(
        self, dimension: Dimension, state: DimensionState, now: float, apply: Apply
    ) -> bool:
        """Cut a configured rate at its first 429 once the estimate is ready. True: it cut."""
        cut = self.configured_cut(dimension, state, now)
        if cut is None:
            return False
        state.cut_at = cut  # recovery climbs back to the estimate, not to what overran
        state.blind_cuts = 2  # an estimate of the limit already: wait for the measurement
        state.last_step = now
        apply(dimension, cut, now, "first 429: estimated")
        # The server's bucket ran dry at the 429: credit saved at the old rate must not follow.
        self._limiter.observe_headers(RateLimitHeaders(requests_remaining=0.0), now)
        return True

    def run_provisional(
        self, dimension: Dimension, state: DimensionState, now: float, apply: Apply
    ) -> None:
        """Nothing known (or a header's reading refused): run at what the 429 implies, not
        flat out, until the episode can be measured."""
        if now - state.episode_start < self._meter.lag():
            return  # the refusals of the first burst (or the fleet's counts) are on their way
        estimate = self.provisional(dimension, state)
        if estimate is None:
            return
        state.last_step = now
        state.blind_cuts = 2  # an estimate of the limit already: wait for the measurement
        if estimate > 0 and (state.rate is None or estimate < state.rate):
            apply(dimension, max(state.floor, estimate), now, "first 429")
