"""The fleet's acceptance log: every process's sends and 429s on one key, counted by send time.

A shared limiter cannot measure acceptance from one process's view (others spend the same key),
so the processes pool their counts in Redis. Each process counts locally per 0.25 s slot of its
own clock (no Redis work per call) and, at most every 0.25 s, sends its new counts and fetches
the fleet's per-slot totals in one round trip (:data:`FLUSH`, one Lua script). Slots are kept in
Redis's clock, so hosts with different clocks agree to about a slot. Each flush brackets
``offset = redis TIME - caller's now`` between the caller's clock before and after the round trip;
the process keeps one estimate and moves it only when a bracket excludes it. Counts and queried
windows are both mapped with that estimate: a round trip stalled on a loaded host (a wide
bracket) cannot shift a window away from the counts it should see. The fetched
totals cover the last ``lookback`` seconds, which grows to the oldest window anyone asked for
(at most ``KEEP_SECONDS``). Old slots are pruned a few per flush and the hash expires when the
fleet stops flushing, so Redis holds at most ``KEEP_SECONDS / SLOT_SECONDS`` slots per key.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._link import Link

__all__ = [
    "FLUSH",
    "KEEP_SECONDS",
    "SLOT_SECONDS",
    "AcceptanceLog",
    "FleetAcceptance",
    "kept_offset",
]

#: The counting granularity, and the shortest interval between two flushes.
SLOT_SECONDS = 0.25
# Seconds after a 429 (or a question) during which counts are flushed every slot.
_HOT_SECONDS = 10.0
# The flush interval of a calm fleet.
_QUIET_FLUSH = 2.0
#: How long the fleet's slots are kept in Redis (the longest window that can be asked for).
KEEP_SECONDS = 120.0
_FIRST_LOOKBACK = 4.0
_SENT, _REJECTED_REQUESTS, _REJECTED_TOKENS = 0, 1, 2

#: ARGV: caller_now, offset ('' until the caller has an estimate: then redis now - caller_now),
#: slot, keep, lookback, n, then n x (caller_time, sent, rej_req, rej_tok).
#: Returns {redis_now, first_slot, then 3 counts per slot from first_slot to now's slot}.
FLUSH = """
local key = KEYS[1]
local clock = redis.call('TIME')
local rnow = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local offset = rnow - tonumber(ARGV[1])
if ARGV[2] ~= '' then offset = tonumber(ARGV[2]) end
local slot, keep, lookback = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local names = {':s', ':r', ':t'}
for i = 0, tonumber(ARGV[6]) - 1 do
  local base = 7 + 4 * i
  local s = math.floor((tonumber(ARGV[base]) + offset) / slot)
  for j = 1, 3 do
    local count = tonumber(ARGV[base + j])
    if count ~= 0 then redis.call('HINCRBY', key, s .. names[j], count) end
  end
end
-- Forget slots older than `keep`: each slot once, so amortised O(1) per flush.
local oldest = math.floor((rnow - keep) / slot)
local low = tonumber(redis.call('HGET', key, 'low') or oldest)
for s = low, oldest - 1 do redis.call('HDEL', key, s .. ':s', s .. ':r', s .. ':t') end
redis.call('HSET', key, 'low', math.max(low, oldest))
redis.call('PEXPIRE', key, math.ceil(keep * 1000))
local first = math.max(oldest, math.floor((rnow - lookback) / slot))
local out = {string.format('%.17g', rnow), tostring(first)}
for s = first, math.floor(rnow / slot) do
  local v = redis.call('HMGET', key, s .. ':s', s .. ':r', s .. ':t')
  for j = 1, 3 do out[#out + 1] = v[j] or '0' end
end
return out
"""


def kept_offset(
    estimate: float | None, redis_now: float, sent_at: float, received_at: float
) -> float:
    """The offset estimate after a round trip that read ``redis_now`` (the script's own clock).

    The true offset lies in ``[redis_now - received_at, redis_now - sent_at]``. A round trip
    stalled before Redis ran (a loaded host, a reconnection) widens that interval rather than
    disproving the estimate, so the estimate moves only as far as the interval demands (a
    stepped wall clock). Without an estimate, the script mapped the counts with the upper end:
    that becomes the estimate, so the counts already in Redis and later windows agree.
    """
    high = redis_now - sent_at
    if estimate is None:
        return high
    return min(max(estimate, redis_now - received_at), high)


class AcceptanceLog:
    """This process's unsent counts and its copy of the fleet's totals (no I/O here)."""

    __slots__ = ("_covered_from", "_fleet", "_in_flight", "_lookback", "_offset", "_pending")

    def __init__(self) -> None:
        self._pending: dict[int, list[int]] = {}  # caller's slot -> counts not yet in Redis
        self._in_flight: dict[int, list[int]] = {}  # counts of the flush under way
        self._fleet: dict[int, tuple[int, int, int]] = {}  # Redis slot -> the fleet's counts
        self._offset: float | None = None  # Redis time - caller's time: the kept estimate
        self._covered_from = math.inf  # the first Redis slot the last fetch covered
        self._lookback = _FIRST_LOOKBACK

    def record(self, at: float, what: int) -> None:
        """Count one send (``what`` 0) or one rejection (1 requests, 2 tokens) sent at ``at``."""
        counts = self._pending.setdefault(math.floor(at / SLOT_SECONDS), [0, 0, 0])
        counts[what] += 1

    @staticmethod
    def kind(dimension: str | None) -> int:
        """The counter of a rejection blamed on ``dimension`` (unknown counts as requests)."""
        return _REJECTED_TOKENS if dimension == "tokens" else _REJECTED_REQUESTS

    def batch(self, now: float) -> tuple[list[str], dict[int, list[int]]]:
        """The script's arguments for a flush at ``now``, and the counts they carry."""
        taken, self._pending = self._pending, {}
        self._in_flight = taken
        # The counts are mapped with the estimate queries use; only the first flush, with no
        # estimate yet, lets the script measure one (and absorb() then keeps that one).
        offset = "" if self._offset is None else repr(self._offset)
        args = [repr(now), offset, repr(SLOT_SECONDS), repr(KEEP_SECONDS), repr(self._lookback)]
        args.append(str(len(taken)))
        for slot, counts in taken.items():
            args.append(repr((slot + 0.5) * SLOT_SECONDS))
            args.extend(str(count) for count in counts)
        return args, taken

    def restore(self, taken: dict[int, list[int]]) -> None:
        """A flush failed: its counts are sent with the next one."""
        self._in_flight = {}
        for slot, counts in taken.items():
            mine = self._pending.setdefault(slot, [0, 0, 0])
            for i, count in enumerate(counts):
                mine[i] += count

    def absorb(self, raw: Any, sent_at: float, received_at: float) -> None:
        """Take the fleet's totals from the script's answer, and check the clock offset.

        ``sent_at`` is the ``now`` given to :meth:`batch` and ``received_at`` the caller's clock
        when the answer came: Redis read its clock in between.
        """
        values = [str(x) for x in raw]
        self._in_flight = {}
        self._offset = kept_offset(self._offset, float(values[0]), sent_at, received_at)
        first = int(values[1])
        self._fleet = {
            first + i // 3: (int(values[i + 2]), int(values[i + 3]), int(values[i + 4]))
            for i in range(0, len(values) - 2, 3)
        }
        self._covered_from = first

    def fleet(
        self, start: float, end: float, now: float, dimension: str | None = None
    ) -> tuple[int, int] | None:
        """Sends and rejections of the fleet sent in ``[start, end)`` (caller's clock).

        A slot counts when its middle is in the window. Rejections are those of ``dimension``,
        or of both when None. None until the first flush, and when the window reaches before
        what was fetched (the next flush fetches that far back).
        """
        offset = self._offset
        wanted = now - start + 2 * SLOT_SECONDS
        if offset is None or (start + offset) <= (self._covered_from - 0.5) * SLOT_SECONDS:
            self._lookback = min(KEEP_SECONDS, max(self._lookback, wanted))
            return None
        low, high = start + offset, end + offset
        totals = [0, 0, 0]
        for slot in range(math.floor(low / SLOT_SECONDS), math.floor(high / SLOT_SECONDS) + 1):
            if low <= (slot + 0.5) * SLOT_SECONDS < high and slot in self._fleet:
                for i, count in enumerate(self._fleet[slot]):
                    totals[i] += count
        unsent = [*self._pending.items(), *self._in_flight.items()]
        for slot, counts in unsent:  # not in the fetched totals yet
            mapped = math.floor(((slot + 0.5) * SLOT_SECONDS + offset) / SLOT_SECONDS)
            if low <= (mapped + 0.5) * SLOT_SECONDS < high:
                for i, count in enumerate(counts):
                    totals[i] += count
        if dimension is None:
            rejected = totals[_REJECTED_REQUESTS] + totals[_REJECTED_TOKENS]
        else:
            rejected = totals[self.kind(dimension)]
        return totals[_SENT], rejected

    @property
    def pending(self) -> bool:
        """Counts wait to be sent."""
        return bool(self._pending)


class FleetAcceptance:
    """The log's exchanges with Redis: one flush at most every slot, started from the caller.

    Created on first use: a process that never records or asks costs Redis nothing for it.
    """

    __slots__ = (
        "_flushed_at",
        "_hot_until",
        "_key",
        "_latest",
        "_latest_loop",
        "_link",
        "_log",
        "_script",
        "_task",
    )

    def __init__(self, link: Link, key: str) -> None:
        self._link = link
        self._key = key
        self._script = link.register_script(FLUSH)
        self._log = AcceptanceLog()
        self._task: asyncio.Task[None] | None = None
        self._flushed_at = -math.inf
        # While 429s are about, flush every slot; otherwise once every
        # _QUIET_FLUSH seconds: a calm fleet then costs Redis almost nothing per job.
        self._hot_until = -math.inf
        # The caller's latest time seen, and the loop's time then: the caller's clock now is
        # estimated from them (it runs with the loop's, as the scheduler's clock does).
        self._latest = -math.inf
        self._latest_loop = 0.0

    def record_sent(self, now: float) -> None:
        self._log.record(now, _SENT)
        self.tick(now)

    def record_rejected(self, sent_at: float, dimension: str | None) -> None:
        self._log.record(sent_at, self._log.kind(dimension))
        now = self._caller_now() if self._latest > -math.inf else sent_at
        self._hot_until = now + _HOT_SECONDS
        self.tick(now)

    def query(self, start: float, end: float, dimension: str | None) -> tuple[int, int] | None:
        # Asking does not make counts flow faster: the controller reads only windows older
        # than the calm flush interval, so a question costs no extra round trips.
        if self._latest == -math.inf:
            # The caller's clock is not known yet (``end`` need not be its now): unknown.
            self._log.fleet(start, end, end, dimension)
            return None
        now = self._caller_now()
        self.tick(now)
        return self._log.fleet(start, end, now, dimension)

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
        interval = SLOT_SECONDS if self._latest < self._hot_until else _QUIET_FLUSH
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
            raw = await self._link.run(self._script, self._key, args)
        except self._link.errors:
            self._log.restore(taken)  # the limit path notices an outage and falls back
            return
        self._log.absorb(raw, sent_at, self._caller_now())

    async def aclose(self) -> None:
        """Wait for a flush under way (it handles Redis errors itself)."""
        if self._task is not None:
            await asyncio.wait([self._task])
