"""A congestion episode of one limit: its state, and the measurement of what the server took.

An *episode* runs from the send time of the first refused call until a quiet period without
429s. Within it the server's bucket is empty, so what it still accepted from the sends between
the first and the last refused one is its refill rate: the limit, neighbours already taken out.
This module holds the state and measures; ``_adaptive.py`` decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._acceptance import SLOT, AcceptanceLog, Dimension, WindowCounts
from ._base import FleetLog

__all__ = ["DimensionState", "Measured", "Meter", "pause_after_429"]

_SATURATED = 0.05  # a window with this share refused was measured at the server's limit
_MIN_ACCEPTED = 5  # fewer accepted calls than this measure noise, not a rate...
_LOW_RATE_SPAN = 4.0  # ...unless the window is this long (a slow limit)
_MIN_SPAN = 0.25
_FLEET_LAG = 2.5
_MANY_REFUSED = 10
# Most sends refused while some were taken: far above the limit, and the count is the limit.
_SOLID_ACCEPTED = 5
_SOLID_REFUSED = 0.5
_MAX_WINDOW = 30.0
_USAGE_SPAN = 10.0


class DimensionState:
    """The adaptive state of one limit: its rate, ceiling, and the congestion episode."""

    __slots__ = (
        "applied",
        "best_measured",
        "blind_cuts",
        "ceiling",
        "configured",
        "cut_at",
        "episode_rate",
        "episode_start",
        "estimated",
        "exact",
        "floor",
        "held",
        "last_429",
        "last_refused_sent",
        "last_step",
        "last_tracked_refusal",
        "learned",
        "measured_in_episode",
        "probe_from",
        "probe_returned_at",
        "probe_started",
        "rate",
        "recover_from",
        "refused_probe",
        "refused_return",
        "settled",
        "stated",
    )

    def __init__(self, rate: float | None, ceiling: float | None, floor: float) -> None:
        self.rate = rate  # None: unlimited (nothing known yet)
        self.applied = rate  # what the limiter was last given
        self.configured = ceiling
        self.ceiling = ceiling
        self.floor = floor
        self.last_step = -math.inf
        self.last_429 = -math.inf
        self.episode_start = math.inf  # send time of the first refused call of the episode
        self.last_refused_sent = -math.inf  # send time of the latest refused call
        self.last_tracked_refusal = -math.inf  # ... of one whose send time is known for sure
        self.episode_rate: float | None = None  # the rate when the episode began
        self.best_measured = 0.0  # the most the server accepted in a measured window of it
        self.blind_cuts = 0  # cuts made in this episode before anything could be measured
        self.learned: float | None = None  # the last limit measured in any episode
        self.measured_in_episode = False
        self.cut_at: float | None = None  # where recovery climbs back to after an episode
        self.recover_from: float | None = None  # the rate recovery started from
        self.estimated = False  # the first 429 of a configured rate was used to estimate it
        self.probe_from: float | None = None  # the rate the probe running now started from
        self.probe_started = -math.inf  # ... and when
        self.held: float | None = None  # the last rate a probe started from: it held until then
        self.refused_probe: float | None = None  # the rate the last refused probe reached
        self.refused_return: float | None = None  # a return under it the server refused too
        self.probe_returned_at = -math.inf  # a refusal at a found limit returned to a held rate
        self.settled = False  # a probe found the limit: later probes wait fifty calls
        self.stated = False  # the server stated this limit (a body or headers)
        self.exact = False  # ... in a 429 body, which states it exactly

    def in_episode(self, now: float, quiet: float) -> bool:
        return now - self.last_429 <= quiet


@dataclass(frozen=True, slots=True)
class Measured:
    """One measurement of an episode."""

    rate: float
    """Requests per second, or tokens per minute, that the server took."""
    saturated: bool
    """Enough of the sends were refused that the server was at its limit throughout."""
    solid: bool
    """Many taken while most were refused: trust it fully, not just a step of it."""
    telling: bool
    """Enough were taken to say what the limit is (not just that the rate is too high)."""


class Meter:
    """Measures an episode from this process's sends, or the fleet's when the limit is shared."""

    __slots__ = ("_fleet", "_log", "_shared")

    def __init__(self, log: AcceptanceLog, fleet: FleetLog | None, *, shared: bool) -> None:
        self._log = log
        self._fleet = fleet
        self._shared = shared

    def __repr__(self) -> str:
        return f"Meter(shared={self._shared}, fleet={self._fleet is not None})"

    def lag(self) -> float:
        """How old a send must be before what became of it is known here.

        Locally, the rejection horizon. Across a fleet, also the time other processes take to
        report their counts to Redis (a calm process reports every two seconds): a younger
        window would count only this process's share and read the limit far too low.
        """
        horizon = self._log.horizon()
        if not self._shared:
            return horizon
        # The fleet log may know how far behind its counts are (every process's watermark).
        reported = None if self._fleet is None else self._fleet.report_lag()
        return horizon + (_FLEET_LAG if reported is None else reported)

    def sent_rate(self, dimension: Dimension, span: float, now: float) -> float:
        """What was sent over the last ``span`` s, by the whole fleet when the limit is shared."""
        if self._shared and self._fleet is not None and dimension == "requests":
            lag = self.lag()
            fleet = self._fleet.fleet_acceptance(now - lag - span, now - lag)
            if fleet is not None:
                return fleet[0] / span
        return self._log.sent_rate(dimension, span, now)

    def counts(self, dimension: Dimension, start: float, end: float) -> WindowCounts | None:
        """The sends of ``[start, end)``; None when a shared limit has no fleet count for it."""
        local = self._log.window(start, end)
        if not self._shared:
            return local
        if self._fleet is None or dimension != "requests":
            return None  # this process's share alone says nothing about a shared limit
        fleet = self._fleet.fleet_acceptance(start, end)
        if fleet is None:
            return None
        sent, refused = fleet
        return WindowCounts(local.span, sent, refused, 0, local.tokens)

    def slots(self, start: float, end: float) -> list[tuple[float, int]] | None:
        """``(send time, calls taken)`` per slot of ``[start, end)`` (None when the limit is
        shared: this process's sends alone say nothing of it)."""
        return None if self._shared else self._log.accepted_by_slot(start, end)

    def episode(
        self, dimension: Dimension, state: DimensionState, now: float, measure_window: float
    ) -> Measured | None:
        """What the server accepted in the episode, or None while it cannot be measured yet."""
        # Only the sends between the first and the last refused one met a saturated server:
        # after the last refusal the client may have been below the limit, so counting those
        # would measure the client's own pace.
        end = min(now - self.lag(), state.last_refused_sent + SLOT)
        window = measure_window
        calls = self.calls_per_second(dimension, state.rate, now)
        if calls is not None and calls > 0:
            # At least about twenty calls' worth, or the count is noise.
            window = max(window, min(_MAX_WINDOW, 20.0 / calls))
        # The first slot holds the burst that emptied the server's bucket: not its refill.
        start = max(state.episode_start + SLOT, end - window)
        if end - start < _MIN_SPAN:
            return None
        counts = self.counts(dimension, start, end)
        if counts is None:
            return None
        refused = counts.rejected(dimension)
        if (
            counts.accepted < _MIN_ACCEPTED
            and end - start < _LOW_RATE_SPAN
            and refused < _MANY_REFUSED
        ):
            return None  # too few to tell; but many refused and few taken is itself a measure
        rate = counts.accepted_rate(dimension)
        if dimension == "requests" and counts.accepted < _MIN_ACCEPTED and counts.span > 0:
            # A slow limit, counted over seconds: the bucket held up to one call of credit at
            # either end, so a few calls read the rate a call too low or high, 25% at 1 rps.
            # A cut takes the high end: one more 429 costs less than seconds spent too slow.
            rate = (counts.accepted + 1) / counts.span
        return Measured(
            rate=rate,
            saturated=counts.sent > 0 and refused >= _SATURATED * counts.sent,
            solid=counts.accepted >= _SOLID_ACCEPTED and refused >= _SOLID_REFUSED * counts.sent,
            telling=counts.accepted >= _MIN_ACCEPTED,
        )

    def calls_per_second(
        self, dimension: Dimension, rate: float | None, now: float
    ) -> float | None:
        """Calls per second the current rate allows (tokens: at the recent tokens per call)."""
        if rate is None or rate <= 0:
            return None
        if dimension == "requests":
            return rate
        per_call = self._log.tokens_per_call(_USAGE_SPAN, now)
        return None if per_call is None else rate / 60.0 / per_call


def pause_after_429(dimension: Dimension, rate: float | None) -> float:
    """How long a 429 of ``dimension`` pauses the model's dispatch, at its current ``rate``."""
    if rate is None:
        return 0.25
    if dimension == "requests":
        return min(1.0, max(0.05, 1.0 / rate))
    return 1.0
