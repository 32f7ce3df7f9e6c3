"""The fleet acceptance log's clock mapping and flushing, in virtual time (no Redis server).

``FakeRedis`` does what the FLUSH script does to one key, with a Redis clock the test sets, so
a round trip that stalls before Redis reads its clock is a number, not a sleep.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from grok_scheduler.distributed._acceptance import (
    SLOT_SECONDS,
    AcceptanceLog,
    kept_offset,
)
from grok_scheduler.distributed._fleet import FleetAcceptance

REDIS_AHEAD = 1_000_000.0  # Redis's wall clock minus the caller's loop clock


class FakeRedis:
    """The FLUSH script's counting, watermarks and fetching (no pruning: tests are short)."""

    def __init__(self) -> None:
        self.counts: dict[int, list[int]] = {}
        self.marks: dict[str, float] = {}

    def flush(self, args: list[str], redis_now: float) -> list[str]:
        caller_now, offset_arg, slot_arg, _keep, lookback_arg, me, live, n = args[:8]
        offset = float(offset_arg) if offset_arg else redis_now - float(caller_now)
        slot, lookback = float(slot_arg), float(lookback_arg)
        for i in range(int(n)):
            at, *counts = args[8 + 4 * i : 12 + 4 * i]
            stored = self.counts.setdefault(math.floor((float(at) + offset) / slot), [0, 0, 0])
            for j, count in enumerate(counts):
                stored[j] += int(count)
        self.marks[me] = float(caller_now) + offset
        others = [
            at for name, at in self.marks.items() if name != me and at >= redis_now - float(live)
        ]
        first = math.floor((redis_now - lookback) / slot)
        out = [repr(redis_now), repr(min(others)) if others else "", str(first)]
        for s in range(first, math.floor(redis_now / slot) + 2):
            out.extend(str(c) for c in self.counts.get(s, [0, 0, 0]))
        return out


def exchange(log: AcceptanceLog, redis: FakeRedis, at: float, stall: float = 0.0) -> None:
    """One flush sent at caller time ``at``; Redis runs it ``stall`` seconds later."""
    args, _ = log.batch(at)
    raw = redis.flush(args, at + stall + REDIS_AHEAD)
    log.absorb(raw, at, at + stall + 0.001)


def test_a_stalled_round_trip_does_not_move_the_window_off_the_counts() -> None:
    """The flake: the last flush stalls 1.2 s before Redis runs it; the window still sees all."""
    redis = FakeRedis()
    first, second = AcceptanceLog(), AcceptanceLog()
    start = 100.0
    for _ in range(3):
        first.record(start, 0)
    for _ in range(2):
        second.record(start, 0)
    second.record(start, AcceptanceLog.kind("requests"))
    first.record(start, AcceptanceLog.kind("tokens"))
    exchange(first, redis, start + 0.01)
    exchange(second, redis, start + 0.02)
    # A loaded host: 1.2 s between reading the caller's clock and Redis reading its own.
    exchange(first, redis, start + 0.03, stall=1.2)
    end = start + 1.24 + 1.0
    assert first.fleet(start - 1.0, end, end - 1.0) == (5, 2)
    assert first.fleet(start - 1.0, end, end - 1.0, "tokens") == (5, 1)
    assert first.fleet(start + 0.5, end, end - 1.0) == (0, 0)  # sent before the window


def test_counts_carried_by_a_stalled_flush_land_in_their_own_slot() -> None:
    """A flush stalls 0.8 s before Redis runs it: its counts are not stored 0.8 s late."""
    redis = FakeRedis()
    log = AcceptanceLog()
    log.record(10.0, 0)
    exchange(log, redis, 10.0)
    log.record(12.0, 0)
    exchange(log, redis, 12.0, stall=0.8)
    exchange(log, redis, 13.0)
    assert log.fleet(10.0, 10.25, 13.0) == (1, 0)
    assert log.fleet(12.0, 12.25, 13.0) == (1, 0)
    assert log.fleet(12.25, 13.0, 13.0) == (0, 0)


def test_unsent_counts_are_mapped_like_the_sent_ones() -> None:
    """Counts not flushed yet are added to the window they will be stored in."""
    redis = FakeRedis()
    log = AcceptanceLog()
    log.record(5.0, 0)
    exchange(log, redis, 5.0, stall=0.5)
    log.record(6.0, 0)
    log.record(6.0, AcceptanceLog.kind(None))
    assert log.fleet(5.0, 6.25, 6.0) == (2, 1)
    assert log.fleet(6.0, 6.25, 6.0) == (1, 1)


@pytest.mark.parametrize(
    ("estimate", "redis_now", "sent_at", "received_at", "kept"),
    [
        (None, 1010.0, 10.0, 10.5, 1000.0),  # the first: what the script mapped with
        (999.9, 1010.0, 10.0, 10.5, 999.9),  # inside a wide bracket: kept
        (999.0, 1010.0, 10.0, 10.5, 999.5),  # proven too small: the bracket's low end
        (1000.3, 1010.0, 10.0, 10.1, 1000.0),  # proven too large (a stepped clock): high end
    ],
)
def test_the_offset_moves_only_as_far_as_a_round_trip_proves(
    estimate: float | None, redis_now: float, sent_at: float, received_at: float, kept: float
) -> None:
    """A round trip brackets the offset; the estimate is clamped into the bracket."""
    assert kept_offset(estimate, redis_now, sent_at, received_at) == pytest.approx(kept)


def test_a_flush_carries_the_kept_offset() -> None:
    """After the first answer, the script maps counts with the estimate, not its own reading."""
    log = AcceptanceLog()
    args, _ = log.batch(1.0)
    assert args[1] == ""  # no estimate yet: the script measures one
    log.absorb([repr(1001.5), "", str(math.floor(997.5 / SLOT_SECONDS))], 1.0, 1.25)
    args, _ = log.batch(2.0)
    assert float(args[1]) == pytest.approx(1000.5)


class HeldLink:
    """A link whose script calls wait until released; counts how many are in flight."""

    errors: tuple[type[BaseException], ...] = (ConnectionError,)

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0
        self.release = asyncio.Event()

    def register_script(self, source: str) -> object:
        return source

    async def run(self, script: object, keys: list[str], args: list[str]) -> Any:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        now = float(args[0])
        first = math.floor((now + REDIS_AHEAD) / SLOT_SECONDS)
        return [repr(now + REDIS_AHEAD), "", str(first), "0", "0", "0"]


async def test_an_explicit_flush_is_the_only_one_in_flight() -> None:
    """A 429 noted during flush() does not start a second exchange beside it."""
    link = HeldLink()
    fleet = FleetAcceptance(link, "key", "me")  # type: ignore[arg-type]
    now = asyncio.get_running_loop().time()
    fleet.record_sent(now)  # starts the first exchange
    flushing = asyncio.create_task(fleet.flush())
    link.release.set()
    await asyncio.sleep(0)  # the first exchange ends; flush() starts its own
    link.release.clear()
    for _ in range(5):
        await asyncio.sleep(0)
    assert link.in_flight == 1
    fleet.record_rejected(now, "requests")  # 429s about: a flush every slot
    fleet.tick(now + 1.0)  # a slot later: would start another exchange if none were under way
    link.release.set()
    await flushing
    await fleet.aclose()
    assert link.most_in_flight == 1
    assert link.calls == 2  # the first exchange and flush()'s
