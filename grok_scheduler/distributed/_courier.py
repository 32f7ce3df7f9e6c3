"""The report of what one process has to tell Redis, and the task that makes sure it is sent.

What a process learns (limits, a 429 pause, the server's remaining counts) and what it gives back
(settled or refunded credit) is merged into one :class:`~._messages.Report`. It rides on the
process's next acquisition for free, or is sent on its own: at once when others must see it
(limits and pauses), else after ``delay`` (an acquisition may carry it meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ._messages import Report

__all__ = ["Courier"]


class Courier:
    """Holds the pending report and one background task that sends it."""

    __slots__ = ("_can_send", "_delay", "_flush_now", "_flusher", "_report", "_send", "_wake")

    def __init__(
        self,
        *,
        delay: float,
        send: Callable[[Report], Awaitable[object]],
        can_send: Callable[[], bool],
    ) -> None:
        self._delay = delay
        self._send = send
        self._can_send = can_send
        self._report = Report()
        self._flush_now = False
        self._flusher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    @property
    def report(self) -> Report:
        """The report being collected (merged into until it is taken)."""
        return self._report

    def take(self) -> Report:
        """The report to send now; a fresh one collects what comes next."""
        report, self._report = self._report, Report()
        return report

    def kick(self, *, urgent: bool) -> None:
        """Make sure the report is sent: at once when urgent, else soon (or with an acquire)."""
        if not self._can_send():
            return
        self._flush_now = self._flush_now or urgent
        if self._flusher is None or self._flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the loop: the next acquisition carries it
                return
            self._wake = asyncio.Event()
            self._flusher = loop.create_task(self._run(), name="grok-scheduler-redis-report")
        elif urgent and self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while not self._report.empty and self._can_send():
            if not self._flush_now and self._wake is not None:
                # Credit and clamps can wait a moment: an acquisition may carry them for free.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._delay):
                        await self._wake.wait()
                self._wake.clear()
            self._flush_now = False
            report = self.take()
            if not report.empty:
                await self._send(report)

    async def flush(self) -> None:
        """Send what there is to report now, and wait until it is sent."""
        if not self._can_send():
            return
        if not self._report.empty:
            self.kick(urgent=True)
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)

    async def aclose(self) -> None:
        """Send what is left at once and wait for the task (it handles Redis errors itself)."""
        if not self._report.empty:
            self.kick(urgent=True)
        flusher = self._flusher
        if flusher is not None:
            if self._wake is not None:
                self._wake.set()
            # wait() keeps our own cancellation intact.
            await asyncio.wait([flusher])
