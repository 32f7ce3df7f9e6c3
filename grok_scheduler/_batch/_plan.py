"""The deadline plan of ``--via auto``: how many waiting lines the online road cannot finish.

Pure functions of ``now`` and what the scheduler has learned, tested with tables. The online
road finishes lines at its rate; what it cannot start before ``deadline - tail`` (the time a
last call takes to answer) overflows to the batch road. Which lines overflow is decided by
priority (:func:`road_for`): CRITICAL and HIGH never leave the online road, LOW lines prefer
the batch road (half the price, and nobody waits on them), NORMAL lines go online unless they
overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._models import Priority

__all__ = ["Estimate", "overflow", "road_for", "rate_of"]

SAFETY = 0.05
"""Share of the online capacity held back: a rate learned a little high must not miss."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the online road can do, as the scheduler knows it now."""

    rate: float | None
    """Lines per second the online road sustains (None: not learned yet)."""
    tail: float
    """Seconds a call takes to answer once it is sent (the last call ends this late)."""


def road_for(priority: int, *, batch_available: bool) -> str:
    """``online`` or ``batch`` for a line before any planning (``plan`` decides NORMAL's)."""
    if batch_available and priority >= Priority.LOW:
        return "batch"
    return "online"


def may_overflow(priority: int) -> bool:
    """CRITICAL and HIGH lines stay online whatever the deadline says."""
    return priority > Priority.HIGH


def rate_of(
    *,
    requests_per_second: float | None,
    tokens_per_minute: float | None,
    tokens_per_call: float | None,
    recent: float | None,
) -> float | None:
    """The online road's lines per second: the learned limits, or what it recently did.

    A token limit binds when calls are large: ``tokens_per_minute / 60 / tokens_per_call``
    lines a second. The throughput of the last few seconds (``recent``) wins when higher: the
    rate controller steps below the limit for a while after a 429, and a line sent to the
    batch road for such a dip cannot come back. A limit that really fell shows in both.
    Before any limit is learned nothing is planned (a rate guessed low would send lines away
    for good).
    """
    rates = []
    if requests_per_second is not None and requests_per_second > 0:
        rates.append(requests_per_second)
    if tokens_per_minute is not None and tokens_per_call and tokens_per_call > 0:
        rates.append(tokens_per_minute / 60.0 / tokens_per_call)
    if not rates:
        return None
    return max(min(rates), recent or 0.0)


def overflow(
    *, waiting: int, committed: int, now: float, deadline: float, estimate: Estimate
) -> int:
    """How many of the ``waiting`` lines to send to the batch road now (0 before a rate).

    ``committed`` lines are already on the online road (queued or in flight): they stay there
    and use capacity first. The online road can still start ``rate * (deadline - tail - now)``
    lines, less :data:`SAFETY`; whatever waits beyond that cannot finish in time.
    """
    if waiting <= 0 or estimate.rate is None:
        return 0
    left = max(0.0, deadline - estimate.tail - now)
    capacity = math.floor(estimate.rate * left * (1.0 - SAFETY))
    return max(0, min(waiting, waiting + committed - capacity))
