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

**How far behind the fleet's counts are.** Each flush also leaves a *watermark* in a second hash:
the Redis time up to which that process's sends are all in Redis. The answer carries the oldest
watermark of the other processes heard within ``LIVE_SECONDS``, so a process knows how old a
window must be before every process's sends in it are counted (``report_lag``) instead of
assuming the slowest flush interval. While 429s are about, every process flushes each slot (a
process that sees a 429, a fleet pause in its limiter's answer or a refusal in the fleet's
totals keeps doing so for ``HOT_SECONDS``, even while it sends nothing), so the fleet's counts
are about half a second behind and its first estimate of a limit comes that soon.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "FLUSH",
    "HOT_SECONDS",
    "KEEP_SECONDS",
    "LIVE_SECONDS",
    "QUIET_FLUSH_SECONDS",
    "SENT",
    "SLOT_SECONDS",
    "AcceptanceLog",
    "kept_offset",
]

#: The counting granularity, and the shortest interval between two flushes.
SLOT_SECONDS = 0.25
#: Seconds after a 429 (here, or a pause or refusal of the fleet's) of flushes every slot.
HOT_SECONDS = 10.0
#: The flush interval of a calm fleet.
QUIET_FLUSH_SECONDS = 2.0
#: How long the fleet's slots are kept in Redis (the longest window that can be asked for).
KEEP_SECONDS = 120.0
#: A process whose watermark is older than this is not sending (a sending one flushes at least
#: every ``QUIET_FLUSH_SECONDS``, and at once on its first send after a longer silence): its
#: counts hold nobody back.
LIVE_SECONDS = QUIET_FLUSH_SECONDS + 1.0
# Fleet refusals this recent in the fetched totals make a process flush every slot too.
_RECENT_REFUSALS = 2.0
_FIRST_LOOKBACK = 4.0
#: The counter of sends (rejections: :meth:`AcceptanceLog.kind`).
SENT = 0
_REJECTED_REQUESTS, _REJECTED_TOKENS = 1, 2

#: KEYS: the counts hash, the watermarks hash.
#: ARGV: caller_now, offset ('' until the caller has an estimate: then redis now - caller_now),
#: slot, keep, lookback, process id, live, n, then n x (caller_time, sent, rej_req, rej_tok).
#: Returns {redis_now, the oldest live watermark of the other processes ('' if none),
#: first_slot, then 3 counts per slot from first_slot to the slot after now's}.
FLUSH = """
local key, marks = KEYS[1], KEYS[2]
local clock = redis.call('TIME')
local rnow = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local offset = rnow - tonumber(ARGV[1])
if ARGV[2] ~= '' then offset = tonumber(ARGV[2]) end
local slot, keep, lookback = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local me, live = ARGV[6], tonumber(ARGV[7])
local names = {':s', ':r', ':t'}
for i = 0, tonumber(ARGV[8]) - 1 do
  local base = 9 + 4 * i
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
-- The caller's sends up to its now are all in; the others' oldest such time, if they are live.
redis.call('HSET', marks, me, string.format('%.17g', tonumber(ARGV[1]) + offset))
local behind = nil
local all = redis.call('HGETALL', marks)
for i = 1, #all, 2 do
  local at = tonumber(all[i + 1])
  if at < rnow - keep then
    redis.call('HDEL', marks, all[i])
  elseif all[i] ~= me and at >= rnow - live and (behind == nil or at < behind) then
    behind = at
  end
end
redis.call('PEXPIRE', marks, math.ceil(keep * 1000))
local first = math.max(oldest, math.floor((rnow - lookback) / slot))
local out = {string.format('%.17g', rnow), '', tostring(first)}
if behind ~= nil then out[2] = string.format('%.17g', behind) end
-- To the slot after now's: a count is mapped by its slot's middle, up to half a slot ahead.
for s = first, math.floor(rnow / slot) + 1 do
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

    __slots__ = (
        "_complete_at",
        "_covered_from",
        "_fleet",
        "_in_flight",
        "_lookback",
        "_offset",
        "_pending",
        "_process",
    )

    def __init__(self, process: str = "") -> None:
        self._process = process  # this process's name for its watermark
        self._pending: dict[int, list[int]] = {}  # caller's slot -> counts not yet in Redis
        self._in_flight: dict[int, list[int]] = {}  # counts of the flush under way
        self._fleet: dict[int, tuple[int, int, int]] = {}  # Redis slot -> the fleet's counts
        self._offset: float | None = None  # Redis time - caller's time: the kept estimate
        self._covered_from = math.inf  # the first Redis slot the last fetch covered
        self._lookback = _FIRST_LOOKBACK
        # Redis time up to which every live process's sends were in Redis at the last fetch.
        self._complete_at = -math.inf

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
        args.extend((self._process, repr(LIVE_SECONDS), str(len(taken))))
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

    def absorb(self, raw: Any, sent_at: float, received_at: float) -> bool:
        """Take the fleet's totals from the script's answer, and check the clock offset.

        ``sent_at`` is the ``now`` given to :meth:`batch` and ``received_at`` the caller's clock
        when the answer came: Redis read its clock in between. Returns True when the fleet saw
        429s in the last ``_RECENT_REFUSALS`` seconds.
        """
        values = [str(x) for x in raw]
        self._in_flight = {}
        redis_now = float(values[0])
        self._offset = kept_offset(self._offset, redis_now, sent_at, received_at)
        # No other live process: nobody else's sends are missing up to the script's run.
        self._complete_at = float(values[1]) if values[1] else redis_now
        first = int(values[2])
        self._fleet = {
            first + i // 3: (int(values[i + 3]), int(values[i + 4]), int(values[i + 5]))
            for i in range(0, len(values) - 3, 3)
        }
        self._covered_from = first
        recent = math.floor((redis_now - _RECENT_REFUSALS) / SLOT_SECONDS)
        return any(
            counts[_REJECTED_REQUESTS] or counts[_REJECTED_TOKENS]
            for slot, counts in self._fleet.items()
            if slot >= recent
        )

    def report_lag(self, now: float) -> float | None:
        """Seconds before ``now`` (caller's clock) from which the fleet's sends may be missing.

        The oldest watermark of the live processes at the last fetch, plus a slot: counts are
        kept per slot and a slot is counted whole when its middle is in a window. None before
        the first fetch.
        """
        if self._offset is None:
            return None
        return max(0.0, now - (self._complete_at - self._offset)) + SLOT_SECONDS

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
        return totals[SENT], rejected

    @property
    def pending(self) -> bool:
        """Counts wait to be sent."""
        return bool(self._pending)
