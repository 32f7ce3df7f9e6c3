"""The first-contact ramp: how fast a model's calls may leave while nothing is known of its limit.

With no limit configured and none stated yet, the only evidence is a 429, and the first one
comes back only after the server's burst is spent. Sending flat out until then (a whole pool of
calls at once) costs as many 429s as calls leave within one 429 round trip of that moment: a
fixed 10-60 refusals at any limit, which is most of the 429s a short run ever pays.

So a blind lane starts small and grows with time (an answer may take a minute): one call at
once, then ``start_rate`` calls per second, doubling every ``doubling`` seconds, like TCP's slow
start clocked by time. The overshoot at the first 429 is then bounded by the ramp's rate times
the 429's round trip, not by the pool.

Every second the ramp spends below the limit while the server's bucket is full is a second of
the limit lost: doubling every 0.25 s from 4/s met 1,000 rps after about two seconds (1.23 x
ideal for an 8 s run at 50 ms). So the ramp is also clocked by what the server took: it may run
at a multiple of the calls sent so far per second of the server's burst and since
(``_PACE_OF_TAKEN``). That grows as fast as calls are taken, and its overshoot at the first 429
stays a fixed share of the limit however high: the pace times the 429's round trip, whatever
the answers' latency (1,000 rps at 50 ms: 1.12 x ideal). The slow start of calls in flight
follows the ramp's rate too (``Lane.concurrency_limit``).

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
# The ramp may run at this many times the calls it sent per second of the
# server's burst (one second) and since: a bucket that took them all refills at least about
# that. Its overshoot at the first 429 is this pace times the 429's round trip, a share of the
# limit: 6 keeps a 10 rps server to 4 refused before a 50 ms 429 is back (8 paid 5); past the
# first 32 calls (a limit of at least ~15 rps) 10, so that 1,000 rps is met in about a second.
_PACE_OF_TAKEN = 6.0
_PACE_OF_MANY_TAKEN = 10.0
_MANY_TAKEN = 32
_SERVER_BURST = 1.0


class FirstContactRamp:
    """Credit for a lane with no known limit: ``start_rate`` per second, doubling per period,
    and at least a multiple of the calls taken per second so far."""

    __slots__ = (
        "_doubling",
        "_first_taken",
        "_grows_from",
        "_level",
        "_quiet",
        "_rate",
        "_seen_429",
        "_start_rate",
        "_taken",
        "_updated",
        "latest_rate",
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
        self.latest_rate = start_rate  # the rate when last asked (for the in-flight bound)
        self._taken = 0  # calls sent under the ramp (the first-contact call included)
        self._first_taken: float | None = None

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
        # Growth stops at the cap: from then on the rate is flat again (integrating the
        # exponential past it would add nothing, and the ramp would never refill).
        capped_from = self._grows_from + self._doubling * math.log2(
            max(1.0, _OPEN_RATE / self._rate)
        )
        growing_end = min(end, max(flat_end, capped_from))
        if growing_end > flat_end:
            # The integral of rate x 2^(t / doubling) over the growing part.
            scale = self._doubling / math.log(2.0)
            credit += scale * (self.rate(growing_end) - self.rate(flat_end))
        if end > growing_end:
            credit += (end - growing_end) * _OPEN_RATE
        return credit

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self.latest_rate = self.rate(now)
            bank = max(1.0, _BANK_SECONDS * self.latest_rate)
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

    def pace_by_taken(self, now: float) -> None:
        """Run at least at ``_PACE_OF_TAKEN`` x the calls sent so far per second of the server's
        burst and since, until a 429 comes (see the module docstring)."""
        if self._seen_429 > -math.inf:
            return
        first = self._first_taken
        if first is None:
            return
        pace = _PACE_OF_TAKEN if self._taken < _MANY_TAKEN else _PACE_OF_MANY_TAKEN
        evidence = pace * self._taken / (now - first + _SERVER_BURST)
        if evidence <= self.rate(now):
            return
        self._refill(now)
        # Rebase the growth on now: from the evidence's rate, doubling with time as before.
        self._rate = min(_OPEN_RATE, evidence)
        self._grows_from = max(now, self._grows_from)

    def take(self, now: float) -> None:
        """A call leaves now under the ramp."""
        self._refill(now)
        self._level -= 1.0
        self._taken += 1
        if self._first_taken is None:
            self._first_taken = now

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
