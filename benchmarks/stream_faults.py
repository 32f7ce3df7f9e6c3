"""Hung calls under a fault mix, streamed and not; and the scheduler's time to first delta.

Part 1, in virtual time (the simulator's ``VirtualServer`` on a ``FakeClock``, so the figures
are exact and repeatable on a loaded machine): N jobs at the server's request rate, with the
fault mix of issue 14 (10% 503, 3% resets, 2% malformed bodies, 1% hangs of an hour), at 0.2 s
and 4 s median latency (lognormal, sigma 0.25), with ``submit`` three ways: the default
(``stream_on_wire=None``: a job streams on the wire when a hung call of it sent plain would be
held over 10 s), plain calls (``stream_on_wire=False``) and always streamed
(``stream_on_wire=True``). Reported: makespan against the ideal (``N / rate + latency``),
jobs still hung when the run is given up (at 20 x ideal: such a run's makespan is that
give-up time), and the share of jobs that succeeded. Targets: makespan <= 1.5 x ideal, 0 hung,
>= 99% ok. Each row runs several simulator seeds (the fault draws): one seed's figure is mostly
its unluckiest job's retry chain. Hung and ok are the worst seed's. ``--diagnosis`` adds rows
that stream with a circuit breaker that never opens, to show what the breaker costs here.

Two more rows per latency are shaped like ``grok-scheduler run``: the CLI's input lines
(``{"id", "prompt"}``, no ``max_tokens``) parsed by its ``LineParser`` and fed through an
unordered ``OutcomeStream`` to a Scheduler built with the CLI's defaults (``--rps`` given, 8
attempts), over the transport wrapper the CLI uses for Ctrl-C: ``drainable(...)``, which streams
because the transport under it can, and, as the CLI had it before, ``DrainableTransport(...)``
(no ``open_stream``: every call plain).

Part 2, over real sockets (the aiohttp simulator on 127.0.0.1, no limits, 0.2 s latency): the
median time from sending to the first text delta, read directly with aiohttp and through
``Scheduler.stream``. Target: within 5 ms.

Part 3, what streaming on the wire costs on the bulk path: ``Scheduler.map`` over real sockets
against the simulator in its own process (no limits, zero latency, 16-token answers, so the
client's CPU is all there is), ``stream_on_wire`` default, off and on in alternating rounds;
reported are the client process's CPU microseconds per job and its throughput, median of the
rounds.
Before that, the assembly alone in a loop: parsing a plain answer against decoding the same
answer's SSE events, assembling them and parsing the assembled body.

    .venv/bin/python benchmarks/stream_faults.py [--jobs 250] [--rate 25] [--seeds 5]
    .venv/bin/python benchmarks/stream_faults.py --part cpu [--lines 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from grok_scheduler import (
    BreakerPolicy,
    FakeClock,
    RetryPolicy,
    Scheduler,
)
from grok_scheduler._core._map import OutcomeStream, Prepared
from grok_scheduler._core._results import read_answer
from grok_scheduler._models import Endpoint
from grok_scheduler._transports._drain import DrainableTransport, drainable
from grok_scheduler._transports._streaming import MockStream, MockStreamTransport
from grok_scheduler._wire._sse import SseDecoder
from grok_scheduler._wire._stream_frames import StreamAssembler
from grok_scheduler.cli._lines import LineParser
from grok_scheduler.simulator import Simulator, SimulatorConfig, VirtualServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SimulatorProcess

KEY = "xai-BENCHstreamKEY0123456789abcdef"
FAULT_MIX = {"503": 0.10, "reset": 0.03, "malformed": 0.02, "hang": 0.01}


_MODES: dict[bool | None, str] = {
    None: "submit, default (streams when a plain hang would be held > 10 s)",
    False: "submit, stream_on_wire=False (plain calls)",
    True: "submit, stream_on_wire=True",
}


def _fault_server(clock: FakeClock, latency: float, rate: float, seed: int) -> VirtualServer:
    """The virtual simulator with issue 14's fault mix, its hangs lasting an hour."""
    config = SimulatorConfig(
        requests_per_second=rate,
        latency=latency,
        latency_dist="lognormal",
        latency_sigma=0.25,
        faults=dict(FAULT_MIX),
        hang_seconds=3600.0,
        seed=seed,
    )
    return VirtualServer(config, now=clock.now, sleep=clock.sleep)

def _answers(server: VirtualServer) -> Any:
    """The virtual server as a stream handler: a plain body comes back whole after the whole
    latency; a streamed one chunk by chunk."""

    async def answer(path: str, body: dict[str, Any]) -> MockStream:
        response = await server.respond(path, body)
        return MockStream(response.status, server.chunks(response), response.headers)

    return answer



async def _fault_run(
    latency: float,
    *,
    on_wire: bool | None,
    jobs: int,
    rate: float,
    breaker: bool = True,
    seed: int = 7,
) -> dict[str, Any]:
    clock = FakeClock(start=0.0)
    server = _fault_server(clock, latency, rate, seed)
    answer = _answers(server)

    ideal = jobs / rate + latency
    async with Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(answer),
        rng=random.Random(1),
        requests_per_second=rate,
        retry=RetryPolicy(max_attempts=8),
        stop_on_fatal=False,
        stream_on_wire=on_wire,
        # Diagnosis only: a breaker that never opens, to show what it costs under this mix.
        breaker=None if breaker else BreakerPolicy(min_calls=1_000_000),
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}", max_tokens=64) for i in range(jobs)]
        finished: list[float] = []
        for future in futures:
            future.add_done_callback(lambda _f: finished.append(clock.now()))
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        try:
            await clock.run_until_done(waiter, limit=20 * ideal)
        except Exception:
            waiter.cancel()
        hung = sum(not f.done() for f in futures)
        # The last job's end, not the clock: run_until_done may step past it to a timer. A
        # run with jobs still hung never ended: its makespan is the give-up time.
        makespan = 20 * ideal if hung else max(finished, default=clock.now())
        ok = sum(f.done() and not f.cancelled() and f.exception() is None for f in futures)
        await scheduler.aclose(cancel=True)
    return {
        "latency": latency,
        "mode": _MODES[on_wire],
        "ideal": ideal,
        "makespan": makespan,
        "ratio": makespan / ideal,
        "hung": hung,
        "ok": ok / jobs,
    }


async def _cli_run(
    latency: float, *, streaming_wrapper: bool, jobs: int, rate: float, seed: int = 7
) -> dict[str, Any]:
    """A ``grok-scheduler run``-shaped bulk run in virtual time (see the module docstring)."""
    clock = FakeClock(start=0.0)
    server = _fault_server(clock, latency, rate, seed)
    answer = _answers(server)

    inner = MockStreamTransport(answer)
    transport = drainable(inner) if streaming_wrapper else DrainableTransport(inner)
    parser = LineParser()
    lines: list[Prepared] = [
        parser.parse(json.dumps({"id": f"p{i}", "prompt": f"job {i}"}).encode(), i + 1)
        for i in range(jobs)
    ]
    ideal = jobs / rate + latency
    finished: list[float] = []
    ok = 0
    async with Scheduler(
        api_key=KEY,
        clock=clock,
        transport=transport,
        rng=random.Random(1),
        requests_per_second=rate,
        retry=RetryPolicy(max_attempts=8),
    ) as scheduler:
        stream = OutcomeStream(scheduler, lines, ordered=False, prepare=lambda item: item)

        async def consume() -> None:
            nonlocal ok
            async for outcome in stream:
                finished.append(clock.now())
                ok += outcome.ok

        consumer = asyncio.ensure_future(consume())
        try:
            await clock.run_until_done(consumer, limit=20 * ideal)
        except Exception:
            consumer.cancel()
        stream.cancel()
        await scheduler.aclose(cancel=True)
    hung = jobs - len(finished)
    makespan = 20 * ideal if hung else max(finished, default=clock.now())
    wrapper = "drainable(), streams" if streaming_wrapper else "DrainableTransport, plain (before)"
    return {
        "latency": latency,
        "mode": f"CLI-shaped run: {wrapper}",
        "ideal": ideal,
        "makespan": makespan,
        "ratio": makespan / ideal,
        "hung": hung,
        "ok": ok / jobs,
    }


async def _first_delta_direct(http: aiohttp.ClientSession, url: str) -> float:
    body = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.perf_counter()
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as reply:
        async for line in reply.content:
            if (
                line.startswith(b"data: {")
                and b'"content": "' in line
                and b'"content": ""' not in line
            ):
                return time.perf_counter() - started
    raise RuntimeError("no delta")


async def _first_delta(calls: int) -> tuple[float, float]:
    config = SimulatorConfig(latency=0.2, requests_per_second=None, api_key=KEY)
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        url = f"{sim.base_url}/chat/completions"
        direct = [await _first_delta_direct(http, url) for _ in range(calls)]
        through: list[float] = []
        async with Scheduler(api_key=KEY, base_url=sim.base_url) as scheduler:
            for _ in range(calls):
                started = time.perf_counter()
                async with scheduler.stream("hi") as stream:
                    async for _chunk in stream:
                        through.append(time.perf_counter() - started)
                        break
    return statistics.median(direct), statistics.median(through)


async def _row(
    latency: float,
    *,
    on_wire: bool | None,
    breaker: bool,
    args: argparse.Namespace,
    cli: bool | None = None,
) -> dict[str, Any]:
    """Every seed of one row; ``cli`` (not None): the CLI-shaped run, streaming wrapper or not."""
    seeds = range(args.seed, args.seed + args.seeds)
    if cli is None:
        runs = [
            await _fault_run(
                latency, on_wire=on_wire, jobs=args.jobs, rate=args.rate, breaker=breaker, seed=s
            )
            for s in seeds
        ]
    else:
        runs = [
            await _cli_run(latency, streaming_wrapper=cli, jobs=args.jobs, rate=args.rate, seed=s)
            for s in seeds
        ]
    ratios = sorted(r["ratio"] for r in runs)
    mode = runs[0]["mode"] + ("" if breaker else ", breaker off (diagnosis)")
    return {
        "latency": latency,
        "mode": mode,
        "ideal": runs[0]["ideal"],
        "median": statistics.median(ratios),
        "ratios": ratios,
        "hung": max(r["hung"] for r in runs),
        "ok": min(r["ok"] for r in runs),
    }


async def _one_answer(streamed: bool) -> tuple[bytes, list[bytes]]:
    """A plain answer's body, and the SSE events of the same answer streamed."""
    clock = FakeClock(start=0.0)
    server = VirtualServer(SimulatorConfig(latency=0.0, seed=1), now=clock.now, sleep=clock.sleep)
    body: dict[str, Any] = {
        "model": "grok-4",
        "messages": [{"role": "user", "content": "Benchmark prompt: say something short."}],
        "max_tokens": 16,
    }
    if streamed:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = await server.respond("chat/completions", body)
    return response.body, list(response.chunks)


async def _assembly_cost(rounds: int = 20_000) -> tuple[float, float, int]:
    """Microseconds per answer: parsing a plain body; decoding, assembling, parsing a stream."""
    plain, _ = await _one_answer(False)
    _, events = await _one_answer(True)
    started = time.process_time()
    for _ in range(rounds):
        read_answer(plain, Endpoint.CHAT_COMPLETIONS)
    plain_us = (time.process_time() - started) / rounds * 1e6
    started = time.process_time()
    for _ in range(rounds):
        decoder, assembler = SseDecoder(), StreamAssembler(Endpoint.CHAT_COMPLETIONS)
        for event in events:
            for payload in decoder.feed(event):
                assembler.read(payload)
        assembled = json.dumps(assembler.body(), separators=(",", ":")).encode()
        read_answer(assembled, Endpoint.CHAT_COMPLETIONS)
    streamed_us = (time.process_time() - started) / rounds * 1e6
    return plain_us, streamed_us, len(events)


async def _bulk_map(
    base_url: str, lines: int, concurrency: int, on_wire: bool | None
) -> dict[str, float]:
    """Scheduler.map over ``lines`` short prompts: client CPU per job and throughput."""
    prompts = (
        {"prompt": f"Benchmark prompt number {n}: say something short.", "max_tokens": 16}
        for n in range(lines)
    )
    ok = 0
    async with Scheduler(
        api_key=KEY, base_url=base_url, max_concurrency=concurrency, stream_on_wire=on_wire
    ) as scheduler:
        cpu, wall = time.process_time(), time.perf_counter()
        async for outcome in scheduler.map(prompts):
            ok += outcome.ok
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"ok": ok, "cpu_us": cpu / lines * 1e6, "rps": ok / wall}


async def _cpu_part(args: argparse.Namespace) -> None:
    plain_us, streamed_us, events = await _assembly_cost()
    print("## The assembly alone (16-token chat answer, one process, no sockets)")
    print(f"plain body parsed: {plain_us:.1f} us; {events} SSE events decoded, assembled and the")
    print(f"assembled body parsed: {streamed_us:.1f} us ({streamed_us - plain_us:+.1f} us per job)")
    runs: dict[bool | None, list[dict[str, float]]] = {None: [], False: [], True: []}
    with SimulatorProcess("--rps", "none", "--latency", "0", "--completion-tokens", "16") as sim:
        for _ in range(args.rounds):
            for on_wire in runs:
                runs[on_wire].append(
                    await _bulk_map(sim.base_url, args.lines, args.concurrency, on_wire)
                )
    print(
        f"\n## Scheduler.map over sockets, {args.lines} jobs, concurrency {args.concurrency}, "
        f"simulator in its own process, median of {args.rounds} alternating rounds"
    )
    print("| stream_on_wire | client CPU per job | throughput | each round (us/job) | ok |")
    print("|---|---|---|---|---|")
    for on_wire, results in runs.items():
        cpu = statistics.median(r["cpu_us"] for r in results)
        rps = statistics.median(r["rps"] for r in results)
        each = " ".join(f"{r['cpu_us']:.0f}" for r in results)
        ok = min(int(r["ok"]) for r in results)
        name = "None (default)" if on_wire is None else str(on_wire)
        print(f"| {name} | {cpu:.0f} us | {rps:,.0f} req/s | {each} | {ok}/{args.lines} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "faults", "cpu"), default="all")
    parser.add_argument("--jobs", type=int, default=250)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7, help="the simulator's first seed")
    parser.add_argument("--seeds", type=int, default=5, help="runs per row, seeds in a row")
    parser.add_argument(
        "--diagnosis", action="store_true", help="add rows with a breaker that never opens"
    )
    parser.add_argument("--lines", type=int, default=20_000, help="jobs per bulk round (cpu)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bulk rounds (cpu)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (cpu)")
    args = parser.parse_args()
    if args.part in ("all", "faults"):
        await _faults_part(args)
    if args.part in ("all", "cpu"):
        await _cpu_part(args)


async def _faults_part(args: argparse.Namespace) -> None:
    rows = [
        await _row(latency, on_wire=on_wire, breaker=True, args=args)
        for latency in (0.2, 4.0)
        for on_wire in (None, False, True)
    ]
    rows += [
        await _row(latency, on_wire=None, breaker=True, args=args, cli=cli)
        for latency in (0.2, 4.0)
        for cli in (True, False)
    ]
    if args.diagnosis:
        rows += [
            await _row(latency, on_wire=True, breaker=False, args=args) for latency in (0.2, 4.0)
        ]
    print(
        f"## Fault mix {json.dumps(FAULT_MIX)}, {args.jobs} jobs at {args.rate:g} rps, "
        f"seeds {args.seed}..{args.seed + args.seeds - 1}"
    )
    print("| median latency | mode | ideal s | x ideal, median | x ideal, each seed | hung | ok |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        each = " ".join(f"{x:.2f}" for x in r["ratios"])
        print(
            f"| {r['latency']:g} s | {r['mode']} | {r['ideal']:.1f} | {r['median']:.2f} | "
            f"{each} | {r['hung']} | {100 * r['ok']:.1f}% |"
        )
    direct, through = await _first_delta(args.calls)
    print(f"\n## Time to first delta, 0.2 s latency, no limits, median of {args.calls}")
    print(f"server (aiohttp directly): {1000 * direct:.1f} ms")
    print(
        f"through Scheduler.stream:  {1000 * through:.1f} ms ({1000 * (through - direct):+.1f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
