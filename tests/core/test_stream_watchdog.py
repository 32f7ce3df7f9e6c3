"""The hang watchdog in virtual time: early hangs cut in seconds, slow first tokens left alone."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from grok_scheduler import FakeClock, MockStream, MockStreamTransport, RetryPolicy, Scheduler
from grok_scheduler._clock import TimerHandle
from grok_scheduler._transports._streaming import StreamHandler
from grok_scheduler.simulator import SimulatorConfig, VirtualServer

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"



def _streaming(clock: FakeClock, stream: StreamHandler, **options: Any) -> Scheduler:
    """A scheduler on ``clock`` that always streams on the wire through ``stream``."""
    return Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(stream),
        rng=random.Random(1),
        stream_on_wire=True,
        **options,
    )

async def _run(clock: FakeClock, scheduler: Scheduler, jobs: int) -> list[Any]:
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}", max_tokens=32) for i in range(jobs)]
        waiter = asyncio.ensure_future(asyncio.gather(*futures))
        await clock.run_until_done(waiter, limit=600.0)
        return list(waiter.result())


async def test_a_hang_sent_before_anything_was_learned_is_cut_in_seconds() -> None:
    """4 s calls, the very first one hangs: it is cut at the 2 s floor, not at the 90 s prior."""
    clock = FakeClock(start=0.0)
    config = SimulatorConfig(requests_per_second=25, latency=4.0, hang_seconds=3600.0)
    server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
    server.fail_next("hang")

    async def stream(path: str, body: dict[str, Any]) -> MockStream:
        response = await server.respond(path, body)
        return MockStream(response.status, server.chunks(response), response.headers)

    scheduler = _streaming(clock, stream, requests_per_second=25)
    results = await _run(clock, scheduler, 30)
    hung = results[0]
    assert hung.attempts == 2 and all(r.attempts == 1 for r in results[1:])
    # Cut at 2 s (the first answers, at 0.5 s, showed the model alive), then a 4 s call.
    assert 6.0 <= hung.in_flight_seconds < 6.1
    assert server.stats.requests == 31


def _sse(*frames: object) -> list[bytes]:
    return [
        b"data: " + (f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n\n"
        for f in frames
    ]


def _answer() -> list[bytes]:
    head = {"id": "c1", "model": "grok-4"}
    return _sse(
        {**head, "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {
            **head,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        },
        b"[DONE]",
    )


async def _wave(waits: list[float]) -> tuple[list[Any], int]:
    """Send one job per wait at once; each attempt of job i is silent ``waits[i]`` seconds."""
    clock = FakeClock(start=0.0)
    calls: list[float] = []

    async def body(wait: float) -> AsyncIterator[bytes]:
        await clock.sleep(wait)
        for chunk in _answer():
            yield chunk

    async def stream(path: str, payload: dict[str, Any]) -> MockStream:
        # A job's every attempt takes as long: the slowness is the call's, not bad luck.
        wait = waits[int(payload["messages"][-1]["content"].split()[-1])]
        calls.append(wait)
        return MockStream(200, body(wait))

    scheduler = _streaming(
        clock,
        stream,
        requests_per_second=1000,
        max_concurrency=64,
        retry=RetryPolicy(max_attempts=8),
    )
    return await _run(clock, scheduler, len(waits)), len(calls)


async def test_a_reasoning_models_slow_first_tokens_are_not_cut() -> None:
    """40 calls sent together, first tokens lognormal around 8 s (1 s .. 82 s): kept, but one.

    Each check asks the bound again, and twice the slowest first byte seen grows as the wave
    answers; only the 82 s outlier, over twice the next slowest (37.5 s), looks like a hang: it
    is cut once at 2 x 37.5 s and answers on its second attempt with the doubled bound.
    """
    rng = random.Random(5)
    waits = [min(90.0, 8.0 * rng.lognormvariate(0.0, 1.0)) for _ in range(40)]
    results, calls = await _wave(waits)
    assert calls == 41
    assert sorted(r.attempts for r in results) == [1] * 39 + [2]
    retried = next(r for r in results if r.attempts == 2)
    assert retried.in_flight_seconds == pytest.approx(sorted(waits)[-2] * 2 + sorted(waits)[-1])


async def test_a_few_fast_answers_do_not_condemn_a_slow_wave() -> None:
    """Three cached answers in 1 s, 37 calls thinking 12-20 s: the silent peers keep the prior.

    A bound learned from the three alone (2 s) would cut all 37; while most calls sent as long
    ago are silent too, the model is slow, not those calls hung.
    """
    waits = [1.0, 1.0, 1.0] + [12.0 + 8.0 * i / 36 for i in range(37)]
    results, calls = await _wave(waits)
    assert calls == 40
    assert all(r.attempts == 1 for r in results)


class _StuckClockGuard(FakeClock):
    """A FakeClock that fails, rather than spins, when timers keep being set for "now"."""

    __slots__ = ("_at_now",)

    def __init__(self, start: float) -> None:
        super().__init__(start=start)
        self._at_now: tuple[float, int] = (start, 0)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        if when <= self.now():
            instant, count = self._at_now
            count = count + 1 if instant == self.now() else 1
            self._at_now = (self.now(), count)
            assert count < 100, f"a timer re-armed at {self.now()!r} again and again"
        return super().call_at(when, callback)


async def test_a_check_falling_a_hair_short_of_its_step_is_not_rearmed_at_now() -> None:
    """Sent at 3.812 s, the 2 s check wakes at 5.812 s, where ``now - sent`` is 1.99999...

    Re-armed for ``sent + 2 s``, which is now, the watchdog woke at once with the same silence
    forever: virtual time stood still (300 jobs at 5 s stalled in review). It waits for the
    next step instead, and the 3 s first byte arrives under the 90 s prior.
    """
    start = 3.812
    assert (start + 2.0) - start < 2.0  # the float trap this test is about
    clock = _StuckClockGuard(start)

    async def body() -> AsyncIterator[bytes]:
        await clock.sleep(3.0)
        for chunk in _answer():
            yield chunk

    async def stream(path: str, payload: dict[str, Any]) -> MockStream:
        return MockStream(200, body())

    scheduler = _streaming(clock, stream, requests_per_second=10)
    [result] = await _run(clock, scheduler, 1)
    assert result.attempts == 1 and result.text == "Hi"
    assert result.in_flight_seconds == pytest.approx(3.0)
