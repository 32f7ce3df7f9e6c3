"""A booking: credit the script set aside for this process's next job, usable after a short wait.

When the wait is short, ACQUIRE takes the credit at once (the level goes below zero, so later
callers of every process queue behind it) and the caller comes back when it is due. The credit
goes back to Redis when the job it was for went away (it expires), when a larger job is now
first, or when the job needs fewer tokens than booked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Booking"]


class Booking:
    """At most one booking: when it is due, for how many tokens, and its expiry timer."""

    __slots__ = ("_at", "_expiry", "_give", "_grace", "_tokens")

    def __init__(self, *, grace: float, give: Callable[[float, float], None]) -> None:
        self._grace = grace  # how long past its due time an unused booking is kept
        self._give = give  # gives (requests, tokens) back to Redis
        self._at: float | None = None
        self._tokens = 0
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def held(self) -> bool:
        return self._at is not None

    @property
    def tokens(self) -> int:
        return self._tokens

    def wait(self, now: float) -> float:
        """Seconds until it is due (0.0 when due; only while one is held)."""
        return max(0.0, (self._at or now) - now)

    def book(self, now: float, wait: float, tokens: int) -> None:
        """Hold the credit Redis set aside, due in ``wait`` seconds."""
        self._tokens = tokens
        self.defer(now, wait)

    def defer(self, now: float, wait: float) -> None:
        """Make it due ``wait`` seconds from ``now`` (a pause another process set)."""
        self._at = now + wait
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(wait + self._grace, self.hand_back)

    def use(self, tokens: int) -> None:
        """Spend it on a job of ``tokens`` (at most the booked ones); the rest goes back."""
        booked = self._tokens
        self.drop()
        if tokens < booked:
            self._give(0.0, float(booked - tokens))

    def hand_back(self) -> None:
        """Give the whole booking back (the job went away, or a larger one is first)."""
        if self._at is not None:
            booked = self._tokens
            self.drop()
            self._give(1.0, float(booked))

    def drop(self) -> None:
        """Forget it without giving anything back (Redis went away, or it was used)."""
        self._at = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
