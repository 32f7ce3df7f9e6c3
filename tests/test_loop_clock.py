"""LoopClock on the loops ``serve`` runs on: a timer never runs before the time it was set for."""

from __future__ import annotations

import asyncio
import functools

import pytest

from grok_scheduler._clock import LoopClock

uvloop = pytest.importorskip("uvloop", reason="uvloop is an optional extra ([serve])")


def _ran(fired: asyncio.Future[float], clock: LoopClock) -> None:
    fired.set_result(clock.now())


@pytest.mark.parametrize("ahead", [0.0001, 0.0003, 0.0004, 0.0012, 0.0107])
def test_a_timer_runs_no_earlier_than_its_time_on_uvloop(ahead: float) -> None:
    """uvloop rounds a delay to the nearest millisecond (under half of one runs at once), and
    its clock counts whole ones: a gate woken early looked again until the millisecond turned.
    """

    async def main() -> list[tuple[float, float]]:
        clock = LoopClock()
        loop = asyncio.get_running_loop()
        seen: list[tuple[float, float]] = []
        for _ in range(20):
            fired: asyncio.Future[float] = loop.create_future()
            when = clock.now() + ahead
            clock.call_at(when, functools.partial(_ran, fired, clock))
            seen.append((when, await fired))
        return seen

    for when, ran_at in uvloop.run(main()):
        assert ran_at >= when


def test_a_timer_for_never_is_set_and_cancelled_on_uvloop() -> None:
    """A far or infinite time (a bound with nothing to cut) is a timer that never fires."""

    async def main() -> None:
        clock = LoopClock()
        for when in (float("inf"), 1e308, clock.now() + 1e12):
            clock.call_at(when, lambda: None).cancel()

    uvloop.run(main())


@pytest.mark.parametrize("seconds", [0.0001, 0.0004, 0.0014])
def test_a_sleep_lasts_at_least_its_time_on_uvloop(seconds: float) -> None:
    """A wait looped until a time passes must not wake short of it (and look again)."""

    async def main() -> list[float]:
        clock = LoopClock()
        slept: list[float] = []
        for _ in range(20):
            start = clock.now()
            await clock.sleep(seconds)
            slept.append(clock.now() - start)
        return slept

    assert min(uvloop.run(main())) >= seconds
