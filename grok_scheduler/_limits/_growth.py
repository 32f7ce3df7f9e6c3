"""How a model's rate grows once 429s stop: back to what the server took, then probing up.

Driven by time, not by answers (``RateController.tick``), so it works with one answer a minute:
linearly back to ``0.98 x`` the rate the server showed it accepts within ``recovery_seconds``,
then up by ``probe_fraction`` per second, doubling every eight seconds of the probe up to 8x,
so a raised limit is found within about half a minute. Once a probe crossed a request limit, a
new probe waits about fifty calls and starts gently (``_probe.py``): at 1 rps a probe on the
clock was a 429 every few seconds. Probing is capped at ``usage_cap x`` what was
actually sent (AWS's adaptive client caps at twice the measured rate): a limit that does not
bind cannot run away. The ceiling is applied by the caller.
"""

from __future__ import annotations

import math
from typing import Protocol

from ._episode import DimensionState
from ._probe import may_probe, probe_doublings

__all__ = ["GrowthPolicy", "grown_rate"]

_PROBE_DOUBLING = 8.0
_MOST_DOUBLINGS = 3.0
_RECOVERED = 0.98


class GrowthPolicy(Protocol):
    """The constants of growth (``AdaptivePolicy`` has them)."""

    @property
    def recovery_seconds(self) -> float: ...

    @property
    def probe_fraction(self) -> float: ...

    @property
    def usage_cap(self) -> float: ...


def grown_rate(
    state: DimensionState,
    policy: GrowthPolicy,
    *,
    elapsed: float,
    quiet_for: float,
    used: float,
    now: float,
    calls_per_second: float | None,
) -> float | None:
    """The rate after ``elapsed`` more seconds of growth, ending ``now`` (None: no rate).

    ``quiet_for`` is how long the quiet period has been over; ``used`` what was sent lately
    (requests per second or tokens per minute, by the fleet when the limit is shared);
    ``calls_per_second`` the calls the rate allows, which sets how long a found limit holds.
    The rate unchanged: holding at a limit a probe found. Marks when a probe starts.
    """
    rate = state.rate
    if rate is None:
        return None
    cut_at = state.cut_at
    if cut_at is not None and state.recover_from is not None and rate < _RECOVERED * cut_at:
        # Back to a rate the server showed it takes: not held to twice a cut rate's usage.
        step = (cut_at - state.recover_from) / policy.recovery_seconds
        return min(_RECOVERED * cut_at, rate + step * elapsed)
    quiet = max(0.0, quiet_for)
    if not may_probe(state, calls_per_second, quiet, now - elapsed):
        return rate  # at a limit a probe found: probe again only every fifty calls
    doublings = min(probe_doublings(state, quiet, now) / _PROBE_DOUBLING, _MOST_DOUBLINGS)
    grown = rate * (1.0 + policy.probe_fraction * math.pow(2.0, doublings) * elapsed)
    # A rate nobody uses must not drift upward without end (AWS caps at twice usage).
    return min(grown, max(rate, policy.usage_cap * used))
