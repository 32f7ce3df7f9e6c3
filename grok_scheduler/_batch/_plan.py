"""The deadline plan of ``--via auto``: which waiting lines leave for the batch road, and when.

Pure functions of ``now`` and what the run has measured, tested with tables.

The online road starts a model's lines at its rate until ``deadline - tail`` (a call sent later
answers after the deadline). The batch road answers a line some ``batch_delay`` after it is
sent; that delay is uncertain (xAI: "typically within 24 hours"), so the plan uses a cautious
estimate of it (:func:`batch_delay_estimate`) and learns it from the lines it already sent.
``deadline - batch_delay`` is then the point of no return: a line sent to the batch road after
it is answered late too. A line sent to the batch road never comes back, so the plan moves a
line as late as it safely can, from the rate it measures as the run goes (:func:`plan`):

* **early** (the point of no return is more than one replan away): only lines the online road
  could not start even somewhat faster than it has gone or than its limit allows
  (``high * (1 + EARLY_MARGIN)``) move. Waiting gains them nothing, and the batch road gets
  the most time and shows its delay;
* **last chance** (the last replan before the point of no return): the lines the cautious pace
  (``low``) would not start in the time left less a hedge (:data:`SAFETY` of it, at least
  :data:`SAFETY_SECONDS`) move too; the hedge covers only the time left after the point of no
  return, not the whole run, so it costs few batch lines;
* **late** (past it): the batch road is not expected in time, so a line that may still make
  it online stays online; lines the online road cannot start even at the generous reading
  still move (the batch road is their only chance, and it may beat its estimate), and the plan
  says the deadline is at risk, so the caller can tell the user. A run starts here when the
  expected batch delay (by default an hour) is longer than the time to its deadline; once the
  batch road has answered, the estimate is what it took.

Which lines may move is decided by priority (:func:`road_for`, :func:`may_overflow`):
CRITICAL and HIGH never leave the online road, LOW lines prefer the batch road (half the price,
and nobody waits on them), NORMAL lines go online unless they overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._models import Priority

__all__ = [
    "BATCH_DELAY_MARGIN",
    "BATCH_DELAY_PRIOR",
    "EARLY_MARGIN",
    "SAFETY",
    "SAFETY_SECONDS",
    "Decision",
    "Estimate",
    "batch_delay_estimate",
    "limit_rate",
    "may_overflow",
    "plan",
    "road_for",
]

EARLY_MARGIN = 0.10
"""Before the last chance, a line moves only if a road this much faster than measured could
not start it: a pace read low while the rate controller was still finding the limit must not
send lines away for good (the last chance sends what this leaves behind)."""
SAFETY = 0.03
"""At the last chance, the share of the time left held back: a road a little slower than
measured in its last stretch must still finish by the deadline."""
SAFETY_SECONDS = 1.0
"""...and at least this long: a 429 and the controller's step back cost about that much, which
a short last stretch could not absorb."""
BATCH_DELAY_PRIOR = 3600.0
"""Seconds the batch road is assumed to take until this run has seen it answer (a guess; the
docs promise only "typically within 24 hours")."""
BATCH_DELAY_MARGIN = 1.5
"""The estimate is this many times the longest delay seen: a later batch may take longer."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What one model's online road can do, as the run knows it now (lines a second).

    Before the road has a pace, ``low`` and ``high`` are the learned limit (None: not learned).
    """

    low: float | None
    """The cautious reading: the slower of the pace lately and over a longer stretch."""
    pace: float | None
    """The pace the road keeps: the faster of the same (None: not measured yet)."""
    high: float | None
    """The generous reading: the pace, or the highest limit learned if that is higher."""
    tail: float
    """Seconds a call takes to answer once it is sent (the last call ends this late)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What one plan says: how many waiting lines move now, and whether the deadline holds."""

    divert: int
    phase: str
    """``early``, ``last`` (the last chance) or ``late`` (past the point of no return)."""
    at_risk: bool
    """Late with lines the online road cannot finish: they go by batch, likely late."""


def road_for(priority: int, *, batch_available: bool) -> str:
    """``online`` or ``batch`` for a line before any planning (``plan`` decides NORMAL's)."""
    if batch_available and priority >= Priority.LOW:
        return "batch"
    return "online"


def may_overflow(priority: int) -> bool:
    """CRITICAL and HIGH lines stay online whatever the deadline says."""
    return priority > Priority.HIGH


def limit_rate(
    *,
    requests_per_second: float | None,
    tokens_per_minute: float | None,
    tokens_per_call: float | None,
) -> float | None:
    """Lines a second the learned limits allow (None: none learned yet).

    A token limit binds when calls are large: ``tokens_per_minute / 60 / tokens_per_call``.
    """
    rates = []
    if requests_per_second is not None and requests_per_second > 0:
        rates.append(requests_per_second)
    if tokens_per_minute is not None and tokens_per_call and tokens_per_call > 0:
        rates.append(tokens_per_minute / 60.0 / tokens_per_call)
    return min(rates) if rates else None


def batch_delay_estimate(
    *, prior: float, longest_seen: float | None, oldest_waiting: float | None
) -> float:
    """Seconds to expect from sending a line by batch to reading its answer.

    ``longest_seen``: the longest delay an answered batch line of this run took;
    ``oldest_waiting``: how long the oldest unanswered one has waited (a delay is at least
    that). Before any answer the ``prior`` stands unless the wait already exceeds it.
    """
    evidence = max(longest_seen or 0.0, oldest_waiting or 0.0)
    if longest_seen is None:
        return max(prior, evidence * BATCH_DELAY_MARGIN)
    return evidence * BATCH_DELAY_MARGIN


def _capacity(rate: float, start_window: float) -> int:
    return math.floor(rate * start_window)


def plan(
    *,
    waiting: int,
    queued: int,
    now: float,
    deadline: float,
    estimate: Estimate,
    batch_delay: float,
    replan_every: float,
) -> Decision:
    """How many of the ``waiting`` lines to send to the batch road now (see the module doc).

    ``queued`` lines are handed to the scheduler but not yet sent: they stay online and need
    a start first. The online road can start ``rate * (deadline - tail - now)`` more lines.
    """
    point_of_no_return = deadline - batch_delay
    start_window = max(0.0, deadline - estimate.tail - now)
    if now + replan_every < point_of_no_return:
        # Nothing has to move yet: wait for a pace (the limit read while the controller is
        # still finding it swings well below the truth).
        generous = estimate.high if estimate.pace is not None else None
        phase, rate = "early", generous and generous * (1.0 + EARLY_MARGIN)
    elif now < point_of_no_return:
        phase, rate = "last", estimate.low
        start_window -= min(start_window, max(SAFETY * start_window, SAFETY_SECONDS))
    else:
        phase, rate = "late", estimate.high
    if waiting <= 0 or rate is None:
        return Decision(0, phase, at_risk=False)
    beyond = waiting + queued - _capacity(rate, start_window)
    divert = max(0, min(waiting, beyond))
    return Decision(divert, phase, at_risk=phase == "late" and divert > 0)
