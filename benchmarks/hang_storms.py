"""Storms of hangs against slow waves: what the hang guards cost in each, in virtual time.

A hang guard must tell a call that will never answer from one that is slow, and both look the
same for a while. These worlds pull the two ways, all with the default policies (300 jobs, a
limit of 10 rps told to the scheduler, answers of about 1 s unless said):

* storms: 15% or 30% of calls never answer, first byte or mid-stream (the simulator's
  ``stream_hang_first`` / ``stream_hang_mid`` / ``hang``), through each road: ``submit``'s
  default, forced plain (``stream_on_wire=False``) and forced streaming;
* slow waves: first bytes lognormal around 5, 30 or 60 s (sigma 1), at 5 rps, no faults;
* a slow wave late in a run: 300 answers in 0.3 s, then 300 thinking about 10 s, at 20 rps;
* a slow minority: 30% of jobs think about 60 s on every attempt, the rest answer in 0.3 s.

Reported per row and seed: makespan / ideal (ideal: jobs / rate + a typical call; a slow
wave's makespan is mostly its slowest call's own wait), jobs paid more than once (calls sent
beyond one per job), and failed jobs.

Run::

    .venv/bin/python benchmarks/hang_storms.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grok_scheduler import FakeClock, MockStream, MockStreamTransport, Scheduler  # noqa: E402
from grok_scheduler.simulator import SimulatorConfig, VirtualServer  # noqa: E402

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"
HANG = 3600.0
_HEAD = {"id": "c1", "model": "grok-4"}

Handler = Callable[[str, dict[str, Any]], Any]


def _frame(frame: object) -> bytes:
    data = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
    return b"data: " + data + b"\n\n"


_CHUNK = _frame({**_HEAD, "choices": [{"index": 0, "delta": {"content": " x"}}]})
_END = _frame(
    {
        **_HEAD,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
    }
) + _frame(b"[DONE]")


_ANSWER = json.dumps(
    {
        **_HEAD,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " x" * 9},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
    }
).encode()


def _simulated(fault: str, share: float, seed: int) -> Callable[[FakeClock], tuple[Handler, Any]]:
    def make(clock: FakeClock) -> tuple[Handler, Any]:
        config = SimulatorConfig(
            requests_per_second=10,
            latency=1.0,
            latency_dist="lognormal",
            latency_sigma=0.25,
            faults={fault: share},
            hang_seconds=HANG,
            seed=seed,
        )
        server = VirtualServer(config, now=clock.now, sleep=clock.sleep)

        async def stream(path: str, body: dict[str, Any]) -> MockStream:
            response = await server.respond(path, body)
            return MockStream(response.status, server.chunks(response), response.headers)

        return stream, None

    return make


def _thinking(
    pick: Callable[[int, int], float], seed: int
) -> Callable[[FakeClock], tuple[Handler, Any]]:
    """Streams silent ``pick(job, call)`` seconds (lognormal, sigma 1, around it), then 9
    chunks 0.1 s apart; a plain call answers whole 0.9 s after the same silence."""

    def make(clock: FakeClock) -> tuple[Handler, Any]:
        rng = random.Random(seed)
        calls = [0]

        async def body(wait: float) -> AsyncIterator[bytes]:
            await clock.sleep(wait)
            for _ in range(9):
                yield _CHUNK
                await clock.sleep(0.1)
            yield _END

        async def whole(wait: float) -> AsyncIterator[bytes]:
            await clock.sleep(wait + 0.9)
            yield _ANSWER

        async def stream(path: str, payload: dict[str, Any]) -> MockStream:
            calls[0] += 1
            job = int(payload["messages"][-1]["content"].split()[-1])
            wait = pick(job, calls[0]) * rng.lognormvariate(0.0, 1.0)
            return MockStream(200, body(wait) if payload.get("stream") else whole(wait))

        return stream, None

    return make


async def _run(
    make: Callable[[FakeClock], tuple[Handler, Any]],
    *,
    on_wire: bool | None,
    jobs: int,
    rate: float,
    typical: float,
) -> tuple[float, int, int]:
    clock = FakeClock(start=0.0)
    handler, _ = make(clock)
    sent = [0]

    async def counted(path: str, body: dict[str, Any]) -> MockStream:
        sent[0] += 1
        result: MockStream = await handler(path, body)
        return result

    async with Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(counted),
        rng=random.Random(1),
        requests_per_second=rate,
        stream_on_wire=on_wire,
        stop_on_fatal=False,
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}", max_tokens=64) for i in range(jobs)]
        ends: list[float] = []
        for future in futures:
            future.add_done_callback(lambda _f: ends.append(clock.now()))
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(waiter, limit=4 * HANG)
        failed = sum(f.cancelled() or f.exception() is not None for f in futures)
    ideal = jobs / rate + typical
    return max(ends) / ideal, sent[0] - jobs, failed


def _late(job: int, call: int) -> float:
    """300 calls answer in about 0.3 s with their chunks; every later one thinks ~10 s."""
    return 10.0 if call > 300 else 0.3 / 2.7


def _minority(job: int, call: int) -> float:
    """30% of the jobs think about a minute on every attempt (a hard prompt stays hard)."""
    return 60.0 if random.Random(job).random() < 0.3 else 0.1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per row, seeds 1..N")
    args = parser.parse_args()
    seeds = range(1, args.seeds + 1)
    roads = {None: "default", False: "plain", True: "streamed"}
    rows: list[tuple[str, str, list[tuple[float, int, int]]]] = []
    for fault, share, on_wire in (
        ("stream_hang_first", 0.15, True),
        ("stream_hang_first", 0.3, True),
        ("stream_hang_mid", 0.3, True),
        ("hang", 0.15, None),
        ("hang", 0.3, None),
        ("hang", 0.3, False),
        ("hang", 0.3, True),
    ):
        runs = [
            await _run(_simulated(fault, share, s), on_wire=on_wire, jobs=300, rate=10, typical=1)
            for s in seeds
        ]
        rows.append((f"{share:.0%} {fault}", roads[on_wire], runs))
    for median in (5.0, 30.0, 60.0):
        runs = [
            await _run(
                _thinking(lambda job, call, m=median: m, s),
                on_wire=None,
                jobs=300,
                rate=5,
                typical=median,
            )
            for s in seeds
        ]
        rows.append((f"slow wave, first bytes ~{median:g} s", "default", runs))
    for world, pick, jobs, rate, typical in (
        ("late slow wave: 300 fast, then ~10 s", _late, 600, 20.0, 10.0),
        ("slow minority: 30% of jobs ~60 s", _minority, 300, 5.0, 60.0),
    ):
        runs = [
            await _run(_thinking(pick, s), on_wire=None, jobs=jobs, rate=rate, typical=typical)
            for s in seeds
        ]
        rows.append((world, "default", runs))
    print(f"## Hang storms and slow waves, virtual time, seeds 1..{args.seeds}")
    print("| world | road | x ideal, each seed | paid twice, each seed | failed |")
    print("|---|---|---|---|---|")
    for world, road, runs in rows:
        ratios = " ".join(f"{r:.2f}" for r, _, _ in runs)
        resent = " ".join(str(n) for _, n, _ in runs)
        print(f"| {world} | {road} | {ratios} | {resent} | {sum(f for _, _, f in runs)} |")


if __name__ == "__main__":
    asyncio.run(main())
