"""The cyclic garbage collector tuned for a long run of many small calls (``serve``, ``run``).

Both commands allocate a few dozen short-lived objects per call (requests, futures, frames,
headers) while hundreds of calls stay in flight. At CPython's default gen-0 threshold (700
allocations) every collection walks the objects of every call still in flight and promotes
them: the collector took 9% of the gateway's instructions (callgrind). Freezing what start-up
built (modules, classes: never garbage) and collecting the young generation ten times less
often lets most call objects die by reference count before a collection ever sees them.

Only the commands do this, around their own run, and put the collector back afterwards: a
library must not retune a process it is imported into.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["YOUNG_THRESHOLD", "tuned_collector"]

YOUNG_THRESHOLD = 7_000
"""Allocations between young collections during a run (CPython's default is 700)."""


@contextlib.contextmanager
def tuned_collector() -> Iterator[None]:
    """Freeze the start-up heap and collect the young generation less often, until exit."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
