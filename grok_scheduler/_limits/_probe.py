"""The steady state at a request limit already found: hold under it, probe above it now and then.

Once a probe has crossed the limit the controller knows roughly where it is, and the only reason
to go above it is to learn that it rose. Each probe costs about one 429 when the limit did not
move, so how often to probe is a price paid per request: a probe on a clock (every ~6 s, as the
first design did) is 1.4% of the requests at 10 rps but 14-20% at 1 rps. So the rate is held for
``_PROBE_EVERY_CALLS`` calls' worth of time between probes (``50 / rate`` s, at most
``_HOLD_MOST`` = 30 s, so a limit that doubled is still found within tens of seconds at 1 rps),
and each probe starts gently (1%/s, doubling every 8 s) so a limit just above is crossed by a
step of about 1%.

A refused probe is not cut multiplicatively (at 1 rps that cost a third of the throughput for
seconds): the limit lies between the rate the probe started from, which held for fifty calls,
and the rate refused. The *cycle bound* may raise the first: from the previous episode's last
refused send to this one's first, both of which met an empty bucket, the server took at most one
call more than it refilled, so ``(accepted - 1) / span`` is a floor under the limit, counted over
a whole cycle (dozens of calls even at 1 rps) rather than over the few calls of one episode,
which at low rates are noise. A probe's own refusals then cut nothing; refusals of calls sent
after the return mean the limit itself moved, and the episode is cut as any other.

Requests only: a token limit's bucket is a minute deep, so a rate above it holds for fifty calls
and neither the start nor the refusal of a probe brackets it; its episodes are measured and cut.
"""

from __future__ import annotations

import math

from ._acceptance import SLOT, Dimension
from ._episode import DimensionState, Meter

__all__ = [
    "cycle_bound",
    "hold_seconds",
    "may_probe",
    "may_return",
    "probe_doublings",
    "probe_refused",
    "refusal_of_probe",
    "return_rate",
    "return_to_held",
]

_PROBE_EVERY_CALLS = 50.0
_HOLD_MOST = 30.0
_CYCLE_MIN_ACCEPTED = 10  # a floor from fewer calls than this is too coarse to raise the rate
_BELOW_REFUSED = 0.98  # the return never reaches the rate that was refused
_NEAR_REFUSED = 0.9  # ... and is at least this close to it
_WIDE = 1.05  # a probe refused within 5% of where it started returns there
_ECHO_PAUSES = 2.0  # refusals of calls sent this many pauses after a return are the probe's
_NEAR_KNOWN = 1.1  # a probe refused within 10% of a refused return: the limit did not rise
_AT_FOUND_LIMIT = 0.97  # of the rate recovery climbs back to (float dust below its 0.98)


def may_return(dimension: Dimension, state: DimensionState) -> bool:
    """Whether a new episode, before its target is set, may return under a limit a probe found.

    Requests only: a minute-deep token bucket lets a rate above the limit hold for fifty calls,
    so neither a held rate nor a refused one brackets it. And not while climbing back after an
    outage: the return would lower the target recovery climbs to.
    """
    if dimension != "requests":
        return False
    target = state.rate
    return state.cut_at is None or (target is not None and target >= _AT_FOUND_LIMIT * state.cut_at)


def may_probe(
    state: DimensionState, calls_per_second: float | None, quiet: float, now: float
) -> bool:
    """Whether to grow above the rate now, ``quiet`` s after the quiet period; marks a start.

    Before any probe found the limit, at once (as the first discovery always did); after, once
    about fifty calls went by without a refusal.
    """
    if state.probe_from is None:
        if state.settled and quiet < hold_seconds(calls_per_second):
            return False
        state.probe_from = state.held = state.rate
        state.probe_started = now
    return True


def probe_doublings(state: DimensionState, quiet: float, now: float) -> float:
    """Seconds of doubling the probe's step has had: gentle at first, so that a limit just above
    where it started is crossed by a step of about 1%; 5% past both its start and the rate the
    last refused probe reached, with no 429, the limit rose, and the step is what the quiet time
    since the last 429 earned."""
    probing = now - state.probe_started
    known = max(state.probe_from or 0.0, state.refused_probe or 0.0)
    if known > 0 and state.rate is not None and state.rate > _WIDE * known:
        return max(probing, quiet)
    return probing


def return_to_held(meter: Meter, state: DimensionState, sent_at: float, now: float) -> float | None:
    """A new episode began with a refusal sent at ``sent_at``: the rate to return to, if any.

    None when no probe found the limit and none is running: the episode cuts as usual.
    """
    refused_at = state.rate
    if refused_at is None or not (state.settled or probe_refused(state)):
        return None
    if probe_refused(state):
        state.refused_probe = refused_at
    back = return_rate(state, refused_at, cycle_bound(meter, state, sent_at))
    if back is None:
        return None
    back = max(state.floor, back)
    state.cut_at = back / 0.98  # recovery and the hold come back to ``back``
    state.settled = True
    state.probe_returned_at = now
    return back


def refusal_of_probe(meter: Meter, state: DimensionState, pause: float) -> bool:
    """The episode's refusals so far are of the refused probe's calls, not of the return.

    Refusals of calls sent after the return (and the pause it brought) mean the limit itself
    moved, or the return was just too high: from then on the episode is cut as any other.
    """
    returned_at = state.probe_returned_at
    if returned_at == -math.inf:
        return False
    if state.last_refused_sent < returned_at + _ECHO_PAUSES * pause:
        return True
    state.probe_returned_at = -math.inf
    counts = meter.counts("requests", returned_at, state.last_refused_sent)
    if counts is not None and counts.accepted > 0:
        # The server took calls at the return and still refused it: recovery must not climb
        # back to it after the cut (at 0.25 rps a refused return, a cut and a refused climb
        # came every ~37 s). Nothing taken is an outage: the target stays for after it.
        state.cut_at = None
        state.refused_return = state.rate
    return False


def hold_seconds(calls_per_second: float | None) -> float:
    """How long to hold a found limit before probing above it: about fifty calls' worth."""
    if calls_per_second is None or calls_per_second <= 0:
        return _HOLD_MOST
    return min(_HOLD_MOST, _PROBE_EVERY_CALLS / calls_per_second)


def probe_refused(state: DimensionState) -> bool:
    """A new episode began while probing above a rate that held: the probe found the limit."""
    return state.probe_from is not None and state.rate is not None and state.rate > state.probe_from


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
    are within 5% (halving that gains little, and a strict server refuses anything above).
    A return still too high is refused while held, and goes back to the highest of the cycle
    bound (over a cycle spent above the limit, a tight one), the rate the last probe started
    from, and 90% of its own.
    """
    if probe_refused(state) and state.probe_from is not None:
        start = max(state.probe_from, bound or 0.0)
        back = start
        if refused_at > _WIDE * start:
            back = max(0.5 * (start + refused_at), _NEAR_REFUSED * refused_at)
    elif state.settled:
        start = max(bound or 0.0, state.held or 0.0)
        back = max(start, _NEAR_REFUSED * refused_at)
    else:
        return None
    known = state.refused_return
    if known is not None and start < known and refused_at <= _NEAR_KNOWN * known:
        # A return this high was refused before (and the limit did not rise since: the probe
        # was refused near it): halfway down from it to where the probe started.
        back = min(back, 0.5 * (start + known))
    return min(back, _BELOW_REFUSED * refused_at)
