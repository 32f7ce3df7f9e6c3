"""The one place that reads time and waits for it.

Everything time-sensitive (limiter, backoff, deadlines, pauses) asks a :class:`Clock`, so the
tests can swap in :class:`FakeClock` and step virtual time deterministically instead of sleeping.
Times are monotonic seconds as floats.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Clock", "FakeClock", "LoopClock", "TimerHandle"]


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time and timers."""

    def now(self) -> float:
        """Current monotonic time in seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once the clock reaches ``when``."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (returns at once for zero or less)."""
        ...


# A delay past this is a timer that never fires in practice (uvloop caps delays at ~100 years).
_FOREVER = 1e9


def _on_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


def _whole_milliseconds(delay: float) -> float:
    """``delay`` rounded up to uvloop's whole milliseconds (0 for none).

    uvloop's clock counts whole milliseconds and rounds a delay to the nearest one, running one
    under half a millisecond at once: the gate, woken short of its credit, looked again and
    again until the millisecond turned (about 15 wake-ups a call in serve's learned mode), and
    a sleep looped until a time passed woke short of it. Rounded up, neither wakes early.
    """
    return math.ceil(delay * 1000.0) / 1000.0 if delay > 0 else 0.0


class LoopClock:
    """The running asyncio loop's monotonic clock (the default)."""

    __slots__ = ()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        if _on_uvloop(loop):
            delay = when - loop.time()
            if delay < _FOREVER:  # beyond, uvloop caps the delay itself (and ceil would raise)
                return loop.call_later(_whole_milliseconds(delay), callback)
        return loop.call_at(when, callback)

    async def sleep(self, seconds: float) -> None:
        if seconds < _FOREVER and _on_uvloop(asyncio.get_running_loop()):
            seconds = _whole_milliseconds(seconds)
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "LoopClock()"


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time for tests: nothing happens until :meth:`advance` moves the clock.

    ``advance`` fires due timers in deadline order and lets the event loop run between them, so
    code under test observes the same ordering it would in real time, without waiting.
    """

    __slots__ = ("_counter", "_now", "_timers")

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._counter), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._now + seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    def next_deadline(self) -> float | None:
        """The earliest pending timer, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def settle(self, rounds: int = 30) -> None:
        """Let ready tasks run until the loop is quiet (no time passes).

        Stops early once nothing but this task is ready: a further round would only spin the
        loop (virtual time has no I/O), and the simulator fires tens of thousands of timers, each
        settled, so the spare rounds were most of a virtual-time test's CPU. On a loop that
        does not expose its ready queue (not CPython's), every round runs as before.
        """
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        for _ in range(rounds):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, firing every timer that falls due."""
        target = self._now + seconds
        await self.settle()
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self._now = max(self._now, deadline)
            _, _, timer = heapq.heappop(self._timers)
            timer.callback()
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()

    async def run_until_done(
        self, awaitable: asyncio.Future[Any], *, limit: float = 3600.0
    ) -> None:
        """Jump from timer to timer until ``awaitable`` is done (or ``limit`` seconds pass)."""
        end = self._now + limit
        await self.settle()
        while not awaitable.done():
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                raise TimeoutError("nothing left to wake the awaited task in virtual time")
            await self.advance(max(0.0, deadline - self._now))

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.3f}, timers={len(self._timers)})"
