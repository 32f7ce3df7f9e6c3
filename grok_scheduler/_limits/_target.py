"""Where recovery climbs back to after a new episode of 429s begins.

Recovery returns to what the last episode showed the server accepts (``cut_at``). At a few
calls a second an episode holds too few taken calls for its measurement to say so, and the
target stayed what it was before the cut: a limit that halved below 1 rps was climbed back
over every ~17 s, refused, cut and climbed again (1 to 0.5 rps: 1.4 x ideal, a 429 in four
calls). So a refusal while climbing back to an unmeasured target, with calls taken since the
last refusal, says the target is too high: the next one lies between where the climb started
and where it was refused. With nothing taken since (an outage), the target is kept: at a cut
rate the quiet period can pass between two sends of one long outage, and each "new" episode
would otherwise lower it.
"""

from __future__ import annotations

import math

from ._acceptance import SLOT, Dimension
from ._episode import DimensionState, Meter

__all__ = ["episode_target"]

_AT_TARGET = 0.98  # recovery stops at this share of ``cut_at`` (``_growth._RECOVERED``)
_TAKEN = 2  # calls taken since the last refusal that tell a limit from an outage
_TOWARD_REFUSED = 0.5  # how far from the climb's start toward the refused rate


def episode_target(
    meter: Meter, dimension: Dimension, state: DimensionState, sent_at: float
) -> float | None:
    """The rate recovery climbs back to after the episode a refusal sent at ``sent_at`` begins.

    A refused climb that lowers it also forgets the rate that held before the limit moved."""
    rate = state.rate
    cut_at = state.cut_at
    if cut_at is None or rate is None:
        return rate if cut_at is None else cut_at
    climbing = rate < _AT_TARGET * cut_at
    kept = cut_at if climbing else rate
    if not _climb_refused(state) or state.best_measured > 0.0:
        # Holding or probing above a limit found (``_probe.py`` returns under it), or the last
        # episode measured what the server took: the target is that.
        return kept
    if not _taken_since(meter, dimension, state, sent_at):
        return kept
    start = state.recover_from
    assert start is not None
    # What held before the limit moved holds no longer: no return to it (``_probe.py``).
    state.settled, state.held, state.refused_probe, state.refused_return = False, None, None, None
    return start + _TOWARD_REFUSED * (rate - start)


def _climb_refused(state: DimensionState) -> bool:
    """The rate was climbing back after a cut (not holding, not probing above) when refused."""
    rate, start = state.rate, state.recover_from
    if rate is None or start is None or not start < rate:
        return False
    return state.probe_from is None or rate <= state.probe_from


def _taken_since(meter: Meter, dimension: Dimension, state: DimensionState, sent_at: float) -> bool:
    """The server took calls between the last refused send and ``sent_at``: not an outage."""
    start = state.last_refused_sent + SLOT
    if dimension != "requests" or not math.isfinite(start):
        return False
    counts = meter.counts(dimension, start, sent_at)
    return counts is not None and counts.accepted >= _TAKEN
