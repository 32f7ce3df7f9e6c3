"""Storms of hangs, late slow waves and a slow minority, streamed, in virtual time.

Found in review of the watchdog's wave rule (a stream is not cut short of the maximum while
more than 10% of the streams opened before it are as silent): with 30% of calls hanging, the
hangs sheltered each other and each waited the 900 s maximum; and a slow wave late in a run was
cut call by call, each finding its peers (the fast calls before, and the slow ones already cut)
all answered. Default policies throughout; 300 jobs at 10 rps, answers in about a second.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from grok_scheduler import FakeClock, MockStream, MockStreamTransport, Scheduler
from grok_scheduler._transports._streaming import StreamHandler
from grok_scheduler.simulator import SimulatorConfig, VirtualServer

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"
_HEAD = {"id": "c1", "model": "grok-4"}
HANG = 3600.0


def _frame(frame: object) -> bytes:
    return b"data: " + (frame if isinstance(frame, bytes) else json.dumps(frame).encode()) + b"\n\n"


_CHUNK = _frame({**_HEAD, "choices": [{"index": 0, "delta": {"content": " x"}}]})
_END = [
    _frame(
        {
            **_HEAD,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
        }
    ),
    _frame(b"[DONE]"),
]


@dataclass
class World:
    """Each attempt: silent ``first_byte`` seconds, 8 chunks 0.1 s apart; or a hang."""

    hang_first: float = 0.0  # share of attempts silent before their first byte for an hour
    hang_mid: float = 0.0  # share silent for an hour after their first chunk
    slow_after: int | None = None  # attempts after this many think ``slow`` seconds
    slow_jobs: float = 0.0  # share of jobs (every attempt) that think ``slow`` seconds
    slow_calls: float = 0.0  # share of attempts that do (a slow tail)
    slow: float = 30.0
    slow_sigma: float = 1.0
    fast: float = 0.25  # the others' first byte (lognormal, sigma 0.25)
    think_in_gap: bool = False  # slow ones send their first chunk at once, then think
    jobs: int = 300
    rate: float = 10.0


@dataclass
class Run:
    makespan: float
    resent: int
    failed: int


async def _run(world: World, seed: int = 1, *, streamed: bool = False) -> Run:
    clock = FakeClock(start=0.0)
    rng = random.Random(seed)
    sent = [0]

    async def body(first_byte: float, hang_mid: bool, gap: float) -> AsyncIterator[bytes]:
        await clock.sleep(first_byte)
        yield _CHUNK
        await clock.sleep(HANG if hang_mid else gap)
        for _ in range(8):
            await clock.sleep(0.1)
            yield _CHUNK
        for frame in _END:
            yield frame

    async def stream(path: str, payload: dict[str, Any]) -> MockStream:
        sent[0] += 1
        job = int(payload["messages"][-1]["content"].split()[-1])
        slow = (
            (world.slow_after is not None and sent[0] > world.slow_after)
            or random.Random(job).random() < world.slow_jobs
            or (world.slow_calls > 0 and rng.random() < world.slow_calls)
        )
        sigma = world.slow_sigma if slow else 0.25
        wait = (world.slow if slow else world.fast) * rng.lognormvariate(0.0, sigma)
        first_byte, gap = (0.2, wait) if slow and world.think_in_gap else (wait, 0.0)
        draw = rng.random()
        if draw < world.hang_first:
            first_byte = HANG
        hang_mid = world.hang_first <= draw < world.hang_first + world.hang_mid
        return MockStream(200, body(first_byte, hang_mid, gap))

    return await _drive(
        clock, stream, sent, jobs=world.jobs, rate=world.rate, on_wire=True, streamed=streamed
    )


async def _drive(
    clock: FakeClock,
    stream: StreamHandler,
    sent: list[int],
    *,
    jobs: int,
    rate: float,
    on_wire: bool | None,
    streamed: bool = False,
) -> Run:
    """Submit ``jobs`` at once under the default policies (``streamed``: each read through
    ``Scheduler.stream``, where a cut after the first chunk fails its job); ``sent`` counts
    the calls."""
    async with Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(stream),
        rng=random.Random(1),
        requests_per_second=rate,
        stream_on_wire=on_wire,
        stop_on_fatal=False,
    ) as scheduler:
        ends: list[float] = []

        async def read(i: int) -> None:
            async with scheduler.stream(f"job {i}", max_tokens=64) as chunks:
                async for _ in chunks:
                    pass

        futures: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(read(i))
            if streamed
            else scheduler.submit_nowait(f"job {i}", max_tokens=64)
            for i in range(jobs)
        ]
        for future in futures:
            future.add_done_callback(lambda _f: ends.append(clock.now()))
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(waiter, limit=4 * HANG)
        failed = sum(f.cancelled() or f.exception() is not None for f in futures)
    return Run(max(ends), sent[0] - jobs, failed)


async def test_a_storm_of_first_byte_hangs_does_not_shelter_itself() -> None:
    """30% of attempts never send a byte: each hang is cut within a minute or two, not 900 s.

    Before: 538 s (the hangs, each over 10% of the silent streams, waited for each other).
    The ideal is 31 s; the evidence (silences that last a minute and never end, then the cut
    jobs answering promptly when tried again) costs the rest: 111 s.
    """
    run = await _run(World(hang_first=0.3))
    assert run.failed == 0
    assert run.makespan < 250.0


async def test_a_storm_of_hangs_mid_stream_does_not_shelter_itself() -> None:
    """30% of streams go silent after their first chunk: every job answered within minutes.

    A stream cut mid-stream keeps its place in the wave of gaps until its job answers promptly
    when tried again (so a minority thinking after an opening chunk is not cut one by one), so
    these hangs wait for the storm's evidence: 113-260 s for seeds 1-3, where the wave rule
    counted over the whole run (f7e13d8) cut them sooner, 52-193 s, and thinkers too.
    """
    for seed in (1, 3):
        run = await _run(World(hang_mid=0.3), seed=seed)
        assert run.failed == 0
        assert run.makespan < 300.0


async def test_streams_cut_after_their_first_chunk_do_not_shelter_later_hangs() -> None:
    """Through ``Scheduler.stream``, 30% of streams hang after their first chunk: those jobs
    fail (a cut after a chunk reached the caller is final), and are never tried again. Kept
    in the wave of gaps as if awaiting their retry, they sheltered every later hang: about
    1,800 s (review); 33 / 32 / 92 s on the code before them."""
    run = await _run(World(hang_mid=0.3), seed=1, streamed=True)
    assert 60 <= run.failed <= 120  # the hung streams, and only they
    assert run.makespan < 200.0


async def test_a_retry_that_hangs_again_does_not_hold_back_the_storms_confirmation() -> None:
    """4 s answers, 30% hang mid-stream. A cut job's next attempt tells at once when it is
    silent past the bound again; told only when it ended, two retries that hung again, each
    sheltered for minutes, kept the storm unconfirmed: 917 s and 8 jobs failed (review)."""
    run = await _run(World(hang_mid=0.3, fast=4.0), seed=2)
    assert run.failed == 0
    assert run.makespan < 300.0


async def test_a_slow_wave_late_in_a_run_is_not_cut_call_by_call() -> None:
    """300 answers in 0.3 s, then 300 that think about 10 s (sigma 1), at 20 rps.

    Before: 29 of them cut and paid twice (each found its peers answered: the fast calls
    before it, and the slow ones already cut, which no longer counted as silent).
    """
    run = await _run(World(slow_after=300, slow=10.0, jobs=600, rate=20.0))
    assert run.failed == 0
    assert run.resent <= 12


async def test_a_slow_minority_pays_a_few_cuts_not_one_per_call() -> None:
    """30% of the jobs think about a minute on every attempt, the rest answer in 0.3 s.

    Until a minute has passed this world looks like a storm of hangs; the evidence for that
    is watched a minute, and the few jobs cut as probes are slow again when tried again, so
    it is no storm. A few are paid twice, not one per slow job (~90).
    """
    run = await _run(World(slow_jobs=0.3, slow=60.0, rate=5.0))
    assert run.failed == 0
    assert run.resent <= 8


async def test_a_minority_thinking_a_minute_after_an_opening_chunk_is_not_cut() -> None:
    """30% of the jobs open their stream at once, then think about a minute (sigma 0.3).

    Found in review: with evidence watched 20 s, those thinks looked like hangs at 22 s; all
    were cut at the 2 s gap floor, and their retries climbed 2, 4, 8, 16, 32 s (91 paid twice,
    one job failed in another seed). A silence must last a minute before it counts as one
    that never ends: none is cut.
    """
    run = await _run(World(slow_jobs=0.3, slow=60.0, slow_sigma=0.3, think_in_gap=True, rate=5.0))
    assert run.failed == 0
    assert run.resent == 0


async def test_a_minority_thinking_minutes_after_an_opening_chunk_is_probed_not_cut() -> None:
    """The same minority thinking about 150 s: past the minute of evidence it looks like a
    storm of hangs, so three are cut as probes; their jobs are slow again when tried again,
    so no more are (review: 116-119 of 300 paid twice, up to 7 attempts each)."""
    run = await _run(World(slow_jobs=0.3, slow=150.0, slow_sigma=0.3, think_in_gap=True, rate=5.0))
    assert run.failed == 0
    assert run.resent <= 5


async def test_hangs_among_a_slow_tail_are_not_held_for_minutes() -> None:
    """8% of attempts hang, 5% take about 15 s and answer, the rest take 1 s.

    Found in review: each hang cut counted as a silent peer of the next one, which then kept
    the 90 s prior. A hang whose job answers promptly when tried again is no longer counted;
    the slow tail keeps its shelter.
    """
    run = await _run(World(hang_first=0.08, slow_calls=0.05, slow=15.0, slow_sigma=0.5), seed=2)
    assert run.failed == 0
    assert run.makespan < 60.0  # 151 s at that commit, 37 s before it


async def _plain_storm(on_wire: bool | None, seed: int) -> Run:
    """The simulator's hang (no answer at all) for 30% of calls, 1 s answers, 10 rps."""
    clock = FakeClock(start=0.0)
    config = SimulatorConfig(
        requests_per_second=10,
        latency=1.0,
        latency_dist="lognormal",
        latency_sigma=0.25,
        faults={"hang": 0.3},
        hang_seconds=HANG,
        seed=seed,
    )
    server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
    requests = [0]

    async def stream(path: str, body: dict[str, Any]) -> MockStream:
        requests[0] += 1
        response = await server.respond(path, body)
        return MockStream(response.status, server.chunks(response), response.headers)

    return await _drive(clock, stream, requests, jobs=300, rate=10, on_wire=on_wire)


async def test_the_default_road_in_a_storm_shares_one_record_of_silences() -> None:
    """By default the first jobs stream (the plain prior is long) and the rest go plain.

    Before: 565 s (328 s now, most of it a few jobs' plain timeouts doubling: 18, 39, 78 s).
    The few streamed jobs' retries, judged by the streams alone, were held to the 90 s prior
    and doubled; plain calls and streams of a model now share one record.
    """
    run = await _plain_storm(None, seed=1)
    assert run.failed == 0
    assert run.makespan < 450.0
