"""The steady state at a limit already found: hold just under it, probe above it now and then.

Once an episode has been survived the controller knows roughly where the limit is, and the only
reason to go above it is to learn that it rose. Each such probe costs about one 429 when the
limit did not move, so how often to probe is a price paid per request: probing on a clock (as
the first design did, a probe every ~6 s) is 1.4% of the requests at 10 rps but 20% at 1 rps.
So probes are counted in requests, as ``_PROBE_EVERY_CALLS / rate`` seconds of holding, capped
at ``_HOLD_MOST`` so a limit that doubled is still found within tens of seconds at 1 rps.

When a probe is refused, the rate goes back to where the probe started (it held for that many
requests) or to the *cycle bound* if higher: what the server accepted from the last refusal of
the previous episode to the first of this one. Both ends met an empty bucket, so the server took
at most one call of credit more than it refilled in between: ``(accepted - 1 call) / span`` is
a floor under its limit, measured over a whole cycle (dozens of calls even at 1 rps) rather than
over the few calls of one episode, which at low rates are noise. A probe's own refusals then
cut nothing; refusals of calls sent after the return mean the limit itself moved, and the
episode is cut as any other.
"""

from __future__ import annotations

import math

from ._acceptance import SLOT
from ._episode import DimensionState, Meter

__all__ = ["cycle_bound", "hold_seconds", "probe_refused", "return_rate"]

_PROBE_EVERY_CALLS = 50.0
_HOLD_MOST = 30.0
_CYCLE_MIN_ACCEPTED = 10  # a floor from fewer calls than this is too coarse to raise the rate
_BELOW_REFUSED = 0.98  # the return never reaches the rate that was refused
_NEAR_REFUSED = 0.9  # ... and is at least this close to it
_WIDE = 1.05  # a probe refused within 5% of where it started returns there


def hold_seconds(calls_per_second: float | None) -> float:
    """How long to hold a found limit before probing above it: about fifty calls' worth."""
    if calls_per_second is None or calls_per_second <= 0:
        return _HOLD_MOST
    return min(_HOLD_MOST, _PROBE_EVERY_CALLS / calls_per_second)


def probe_refused(state: DimensionState) -> bool:
    """A new episode began while probing above a rate that held: the probe found the limit."""
    return (
        state.probe_from is not None and state.rate is not None and state.rate > state.probe_from
    )


def cycle_bound(meter: Meter, state: DimensionState, sent_at: float) -> float | None:
    """Requests per second the server surely refills, from the cycle ending at ``sent_at``.

    The cycle runs from the previous episode's last refused send to this one's first; None
    when there is none, or it is too short to say anything.
    """
    start = state.last_refused_sent + SLOT
    if not math.isfinite(start) or sent_at - start < 1.0:
        return None
    counts = meter.counts("requests", start, sent_at)
    if counts is None or counts.accepted < _CYCLE_MIN_ACCEPTED:
        return None
    return (counts.accepted - 1) / (sent_at - start)


def return_rate(state: DimensionState, refused_at: float, bound: float | None) -> float | None:
    """Where to go back to after a refusal at a limit a probe found; None: cut as usual.

    The limit lies between where a refused probe started (or the cycle bound, if higher) and
    the rate refused, and at a server without a deep burst just under the latter: the return is
    halfway between the two, and at least 90% of the rate refused; to the start when the two
    are within 5% (halving that gains little, and a strict server refuses anything above). A return still too high is
    refused while held, and goes back to the highest of the cycle bound (over a cycle spent
    above the limit, a tight one), the rate the last probe started from, and 90% of its own.
    """
    if probe_refused(state) and state.probe_from is not None:
        start = max(state.probe_from, bound or 0.0)
        back = start
        if refused_at > _WIDE * start:
            back = max(0.5 * (start + refused_at), _NEAR_REFUSED * refused_at)
    elif state.settled:
        back = max(bound or 0.0, state.held or 0.0, _NEAR_REFUSED * refused_at)
    else:
        return None
    return min(back, _BELOW_REFUSED * refused_at)
