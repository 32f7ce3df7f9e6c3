"""The first-contact ramp: how fast a model's calls may leave while nothing is known of its limit.

With no limit configured and none stated yet, the only evidence is a 429, and the first one
comes back only after the server's burst is spent. Sending flat out until then (a whole pool of
calls at once) costs as many 429s as calls leave within one 429 round trip of that moment: a
fixed 10-60 refusals at any limit, which is most of the 429s a short run ever pays.

So a blind lane starts small and grows with time, not with answers (an answer may take a
minute): one call at once, then ``start_rate`` calls per second, doubling every ``doubling``
seconds, like TCP's slow
start clocked by time. The overshoot at the first 429 is then bounded by the ramp's rate times
the 429's round trip, not by the pool. A 10 rps server is reached within about a second; a
1,000 rps one within about two, so an unlimited server pays little.

The ramp ends for good once anything is known (a configured, stated or estimated rate: the
limiter has one). A 429 that leaves the rate unknown (an outage, no estimate yet) halves the
ramp, and it grows again only after ``quiet`` seconds without another.
"""

from __future__ import annotations

import math

__all__ = ["FirstContactRamp"]

# The ramp's credit may bank this many seconds of its rate (at least one call): enough that
# the gate's wake-ups need not be exact, too little to become a burst.
_BANK_SECONDS = 0.05
# The ramp opens with this many seconds of its start rate as credit: one call.
_OPENING_SECONDS = 0.25
# Beyond this rate the ramp cannot be what binds (no pool sends faster): stop computing it.
_OPEN_RATE = 1e5


class FirstContactRamp:
    """Credit for a lane with no known limit: ``start_rate`` per second, doubling per period."""

    __slots__ = (
        "_doubling",
        "_grows_from",
        "_level",
        "_quiet",
        "_rate",
        "_seen_429",
        "_start_rate",
        "_updated",
    )

    def __init__(
        self,
        *,
        now: float,
        start_rate: float = 4.0,
        doubling: float = 0.25,
        quiet: float = 2.0,
    ) -> None:
        if not (start_rate > 0 and doubling > 0 and quiet >= 0):
            raise ValueError("the ramp needs a positive start rate and doubling period")
        self._start_rate = start_rate
        self._doubling = doubling
        self._quiet = quiet
        self._rate = start_rate  # the rate at _grows_from (constant before it)
        self._grows_from = now
        self._level = start_rate * _OPENING_SECONDS
        self._updated = now
        self._seen_429 = -math.inf

    def __repr__(self) -> str:
        return (
            f"FirstContactRamp(rate={self._rate:g}/s, grows_from={self._grows_from:.3f}, "
            f"level={self._level:.3f})"
        )

    def rate(self, now: float) -> float:
        """Calls per second the ramp allows at ``now``."""
        if now <= self._grows_from:
            return self._rate
        exponent = min((now - self._grows_from) / self._doubling, 60.0)
        return min(_OPEN_RATE, self._rate * math.pow(2.0, exponent))

    def _credit(self, start: float, end: float) -> float:
        """Calls the ramp allowed between ``start`` and ``end``."""
        if end <= start:
            return 0.0
        flat_end = min(end, max(start, self._grows_from))
        credit = (flat_end - start) * self._rate
        if end > flat_end:
            # The integral of rate x 2^(t / doubling) over the growing part.
            scale = self._doubling / math.log(2.0)
            credit += scale * (self.rate(end) - self.rate(flat_end))
        return credit

    def _refill(self, now: float) -> None:
        if now > self._updated:
            bank = max(1.0, _BANK_SECONDS * self.rate(now))
            # Credit above the bank (the opening second's) is kept until spent, never grown.
            self._level = min(
                max(bank, self._level), self._level + self._credit(self._updated, now)
            )
            self._updated = now

    def delay(self, now: float) -> float:
        """Seconds until the ramp lets the next call go (0.0: now)."""
        self._refill(now)
        need = 1.0 - self._level
        if need <= 1e-9:
            return 0.0
        rate = self.rate(now)
        if now < self._grows_from or rate >= _OPEN_RATE:
            return need / rate
        # Solve the growing integral for the moment the missing credit has come in.
        scale = self._doubling / math.log(2.0)
        return self._doubling * math.log2(1.0 + need / (scale * rate))

    def take(self, now: float) -> None:
        """A call leaves now under the ramp."""
        self._refill(now)
        self._level -= 1.0

    def restart(self, now: float) -> None:
        """Begin again from ``start_rate`` with its opening credit (the pool opens now)."""
        self._rate = self._start_rate
        self._grows_from = now
        self._level = self._start_rate * _OPENING_SECONDS
        self._updated = now

    def on_rate_limited(self, at: float) -> None:
        """A 429 came back at ``at`` while nothing is known: half the rate, held until a quiet
        period passes. Told the same 429 again (the latest one seen), nothing changes."""
        if at <= self._seen_429:
            return
        self._seen_429 = at
        now = max(at, self._updated)
        self._refill(now)
        self._rate = max(self._start_rate, 0.5 * self.rate(now))
        # The credit in hand stays: the lane's pause after the 429 is the limiter's to hold
        # (a server's "retry now" must not wait for the ramp).
        self._grows_from = now + self._quiet
