"""A wave of slow silences (a reasoning model thinking) is the world, not a hang: none is cut.

Found in review: 300 jobs at 5 rps with first tokens around 30 s (lognormal, sigma 1) were cut
and paid again by the dozen, because the first bounds came from the wave's fastest answers (or
a 30 s prior). Sent at a steady rate here, as a run sends them, in virtual time.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from grok_scheduler import FakeClock, MockStream, MockStreamTransport, RetryPolicy, Scheduler

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"
_HEAD = {"id": "c1", "model": "grok-4"}


def _sse(*frames: object) -> list[bytes]:
    return [
        b"data: " + (f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n\n"
        for f in frames
    ]


_OPENING = _sse({**_HEAD, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
_ANSWER = _sse(
    {**_HEAD, "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
    {
        **_HEAD,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    },
    b"[DONE]",
)


async def _paced_wave(
    waits: list[float], *, opens_at_once: bool, hangs: int | None = None
) -> tuple[list[Any], int]:
    """One job per wait at 5 rps; each attempt of job i thinks ``waits[i]`` s before answering.

    ``opens_at_once``: the stream sends an empty role chunk first and then thinks (the pause is
    a gap); else it is silent until the answer (the pause is the time to first byte).
    ``hangs``: this job's first attempt never answers.
    """
    clock = FakeClock(start=0.0)
    sent: list[int] = []

    async def body(wait: float) -> AsyncIterator[bytes]:
        if opens_at_once:
            for chunk in _OPENING:
                yield chunk
        await clock.sleep(wait)
        for chunk in _ANSWER:
            yield chunk

    async def stream(path: str, payload: dict[str, Any]) -> MockStream:
        job = int(payload["messages"][-1]["content"].split()[-1])
        wait = 1e9 if job == hangs and job not in sent else waits[job]
        sent.append(job)
        return MockStream(200, body(wait))

    async with Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(stream),
        rng=random.Random(1),
        requests_per_second=5,
        retry=RetryPolicy(max_attempts=8),
        stream_on_wire=True,
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}", max_tokens=32) for i in range(len(waits))]
        waiter = asyncio.ensure_future(asyncio.gather(*futures))
        await clock.run_until_done(waiter, limit=3600.0)
        results = waiter.result()
    return list(results), len(sent)


def _thinking(jobs: int, median: float) -> list[float]:
    rng = random.Random(2)  # 4 s .. 265 s; the first job thinks longest
    return [min(600.0, median * rng.lognormvariate(0.0, 1.0)) for _ in range(jobs)]


async def test_slow_first_bytes_of_a_wave_are_not_cut() -> None:
    """60 jobs, first bytes lognormal around 30 s (sigma 1): every job answers on its first try."""
    results, calls = await _paced_wave(_thinking(60, 30.0), opens_at_once=False)
    assert calls == 60
    assert [r.attempts for r in results] == [1] * 60


async def test_a_long_think_after_an_opening_chunk_is_not_cut() -> None:
    """The same wave behind an empty opening chunk: the pause is a gap, still not a hang."""
    results, calls = await _paced_wave(_thinking(60, 30.0), opens_at_once=True)
    assert calls == 60
    assert [r.attempts for r in results] == [1] * 60


async def test_a_hang_in_a_slow_wave_is_still_cut_and_alone() -> None:
    """One stream of that wave hangs after its opening chunk: it alone is cut and sent again.

    Cut once the wave has answered, at twice the slowest first byte seen (265 s here), not at
    the 900 s maximum; its second attempt then thinks its own 223 s.
    """
    waits = _thinking(60, 30.0)
    results, calls = await _paced_wave(waits, opens_at_once=True, hangs=30)
    assert calls == 61
    assert [r.attempts for r in results] == [1] * 30 + [2] + [1] * 29
    assert results[30].in_flight_seconds - waits[30] < 2 * max(waits) + 10.0
