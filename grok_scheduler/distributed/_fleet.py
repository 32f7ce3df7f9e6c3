"""The fleet acceptance log's exchanges with Redis (the counting is ``_acceptance.py``'s).

Each process flushes its new counts and fetches the fleet's totals in one round trip, at most
once a slot while 429s are about and once every ``QUIET_FLUSH_SECONDS`` seconds otherwise, started
from the caller's own calls (no Redis work per call) and, while hot, from a timer as well: a
process that sends nothing must still move its watermark, or the others wait for it.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from ._acceptance import FLUSH, HOT_SECONDS, QUIET_FLUSH_SECONDS, SENT, SLOT_SECONDS, AcceptanceLog

if TYPE_CHECKING:
    from ._link import Link

__all__ = ["FleetAcceptance"]


class FleetAcceptance:
    """The log's exchanges with Redis: one flush at most every slot, started from the caller.

    Created on first use: a process that never records or asks costs Redis nothing for it.
    While 429s are about (hot), a timer keeps flushing every slot even when the process sends
    nothing, so its watermark does not hold the fleet's measurement back.
    """

    __slots__ = (
        "_beat",
        "_closed",
        "_flushed_at",
        "_hot_until",
        "_keys",
        "_latest",
        "_latest_loop",
        "_link",
        "_log",
        "_script",
        "_task",
    )

    def __init__(self, link: Link, key: str, process: str) -> None:
        self._link = link
        self._keys = [key, f"{key}:marks"]
        self._script = link.register_script(FLUSH)
        self._log = AcceptanceLog(process)
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.TimerHandle | None = None
        self._closed = False
        self._flushed_at = -math.inf
        # While 429s are about, flush every slot; otherwise once every
        # QUIET_FLUSH_SECONDS seconds: a calm fleet then costs Redis almost nothing per job.
        self._hot_until = -math.inf
        # The caller's latest time seen, and the loop's time then: the caller's clock now is
        # estimated from them (it runs with the loop's, as the scheduler's clock does).
        self._latest = -math.inf
        self._latest_loop = 0.0

    @property
    def keys(self) -> list[str]:
        """The Redis keys it writes (the counts, the watermarks)."""
        return list(self._keys)

    def record_sent(self, now: float) -> None:
        self._log.record(now, SENT)
        self.tick(now)

    def record_rejected(self, sent_at: float, dimension: str | None) -> None:
        self._log.record(sent_at, self._log.kind(dimension))
        self.heat(self._caller_now() if self._latest > -math.inf else sent_at)

    def hot(self, now: float) -> bool:
        """429s are about: counts are flushed every slot."""
        return now < self._hot_until

    def heat(self, now: float) -> None:
        """429s are about (here or elsewhere in the fleet): flush every slot for a while."""
        self._hot_until = max(self._hot_until, now + HOT_SECONDS)
        self.tick(now)

    def query(self, start: float, end: float, dimension: str | None) -> tuple[int, int] | None:
        # Asking does not make counts flow faster: while 429s are about every process flushes
        # each slot anyway, and in calm times the controller reads only older windows.
        if self._latest == -math.inf:
            # The caller's clock is not known yet (``end`` need not be its now): unknown.
            self._log.fleet(start, end, end, dimension)
            return None
        now = self._caller_now()
        self.tick(now)
        return self._log.fleet(start, end, now, dimension)

    def report_lag(self) -> float | None:
        """How far behind the caller's now the fleet's counts may be (None: not known yet)."""
        if self._latest == -math.inf:
            return None
        return self._log.report_lag(self._caller_now())

    def _caller_now(self) -> float:
        return self._latest + (asyncio.get_running_loop().time() - self._latest_loop)

    def tick(self, now: float) -> None:
        """Note the caller's time; start a flush when a slot has passed since the last one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if now >= self._latest:
            self._latest, self._latest_loop = now, loop.time()
        busy = self._task is not None and not self._task.done()
        interval = SLOT_SECONDS if self._latest < self._hot_until else QUIET_FLUSH_SECONDS
        if busy or self._latest - self._flushed_at < interval:
            return
        self._flushed_at = self._latest
        self._task = loop.create_task(self._flush(), name="grok-scheduler-redis-acceptance")

    async def flush(self) -> None:
        """Send the counts and fetch the fleet's totals now (after a flush under way)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._latest == -math.inf:
            return  # nothing recorded or asked yet
        self._flushed_at = self._latest
        # As the one task, so tick() cannot start a second flush beside it: two in flight would
        # each replace the other's in-flight counts and could absorb their answers out of order.
        self._task = asyncio.get_running_loop().create_task(
            self._flush(), name="grok-scheduler-redis-acceptance"
        )
        await asyncio.shield(self._task)

    async def _flush(self) -> None:
        # The caller's clock before and after the round trip brackets Redis's reading of TIME.
        sent_at = self._caller_now()
        args, taken = self._log.batch(sent_at)
        try:
            raw = await self._link.run(self._script, self._keys, args)
        except self._link.errors:
            self._log.restore(taken)  # the limit path notices an outage and falls back
            return
        received_at = self._caller_now()
        if self._log.absorb(raw, sent_at, received_at):
            self._hot_until = max(self._hot_until, received_at + HOT_SECONDS)
        self._keep_beating(received_at)

    def _keep_beating(self, now: float) -> None:
        """While hot, the next flush comes a slot later even if nothing calls tick()."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if now < self._hot_until and not self._closed:
            self._beat = asyncio.get_running_loop().call_later(
                SLOT_SECONDS, lambda: self.tick(self._caller_now())
            )

    async def aclose(self) -> None:
        """Stop the timer; wait for a flush under way (it handles Redis errors itself)."""
        self._closed = True
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if self._task is not None:
            await asyncio.wait([self._task])
