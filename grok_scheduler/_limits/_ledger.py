"""What one dimension of credit spent lately, so a server's old count can be aged to now.

A server counts ``remaining`` when it admits a call; the answer, and the count with it, may come
seconds later. Read as the level now, "remaining 0" from a call that took 2 s stalls the pool
for a refill it already had. Aged, the count says: the server held ``remaining`` at the send,
has refilled ``rate * age`` since, and has admitted what this client sent since. The ledger
keeps the running total of net spend (takes minus give-backs) with its times, for that last
term.
"""

from __future__ import annotations

import bisect
from array import array

__all__ = ["SpendLedger"]

# Counts older than this are not aged (the ledger forgets): the server has refilled a whole
# window many times over, and a count that old says nothing about now.
_HORIZON_SECONDS = 120.0


class SpendLedger:
    """Running net spend with its times, kept for the last two minutes."""

    __slots__ = ("_complete_from", "_first", "_forgotten", "_times", "_total", "_totals")

    def __init__(self, now: float) -> None:
        # Unboxed doubles: at 1,000 rps two minutes are 120,000 entries.
        self._times = array("d")
        self._totals = array("d")
        self._first = 0
        self._total = 0.0
        self._forgotten = 0.0
        """The running total at the last entry forgotten."""
        self._complete_from = now
        """The ledger holds every spend after this moment."""

    def record(self, amount: float, now: float) -> None:
        """Note ``amount`` spent (negative: given back) at ``now``."""
        self._total += amount
        # Callers pass their clock's now; keep the times sorted even if one lags another.
        if self._times and now < self._times[-1]:
            now = self._times[-1]
        self._times.append(now)
        self._totals.append(self._total)
        self._forget_before(now - _HORIZON_SECONDS)

    def spent_after(self, moment: float) -> float | None:
        """Net spend strictly after ``moment``; None when the ledger no longer reaches back."""
        if moment < self._complete_from:
            return None
        index = bisect.bisect_right(self._times, moment, lo=self._first)
        before = self._totals[index - 1] if index > self._first else self._forgotten
        return self._total - before

    def _forget_before(self, moment: float) -> None:
        first = self._first
        times = self._times
        while first < len(times) and times[first] < moment:
            self._complete_from = times[first]
            self._forgotten = self._totals[first]
            first += 1
        self._first = first
        # Compact once half the list is forgotten: amortised O(1) per record.
        if first > 64 and first * 2 > len(times):
            del times[:first]
            del self._totals[:first]
            self._first = 0
