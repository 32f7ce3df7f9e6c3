"""Four processes, each an ``AsyncOpenAI`` client, through one ``grok-scheduler serve`` gateway.

The simulator (in this process) enforces 20 requests per second strictly (a 20-request burst)
with 0.2 s answers. Four client processes (this file run with ``--client``) each send a quarter
of the jobs at once with openai-python, in three ways:

* gateway: every client points its base URL at one gateway started with ``--rps 20``
  (``max_retries=0``: the gateway retries, inside the limit);
* gateway, learned: the same, the gateway told no limit (it learns from 429s);
* direct: every client talks to the server itself with the SDK's default 2 retries (what four
  uncoordinated apps on one key do today).

Ideal is the best the server allows: ``(jobs - burst) / rate + latency``. Reported per row:
makespan (from the common start signal to the last answer), makespan / ideal, when the server
took its first call ("1st call"), makespan / ideal counted from that call ("ratio*"), the
server's 429s and their share of its requests, failed jobs (with their types), and for the
gateway rows its CPU time per request (user + system, read from /proc around the run, so
start-up is not counted).

The clients warm their SDK before the signal (:func:`_warm_up`), yet each still spends a few
ms of CPU on each of its 100 calls, and its tasks take turns: the first call's body is written
only after the others were built. Four processes doing so at once on two cores shared with the
gateway and the simulator take ~0.3 s of a quiet machine and ~1 s at load 8 before the first
body reaches the gateway (traced: the gateway sent it on within a millisecond). "ratio*" leaves
that client-side wait out; the gateway's own first contact (its limiter starting half full,
one call in flight until the first answer) stays in both ratios.

Run::

    .venv/bin/python benchmarks/gateway.py [--jobs 400] [--loop auto|asyncio|uvloop]
        [--http auto|httptools|aiohttp]

``--loop`` and ``--http`` are passed to ``serve``; ``auto`` (the default, as for ``serve``) is
uvloop and the lean httptools server when they are installed (``pip install
'grok-scheduler[serve]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grok_scheduler.simulator import Simulator, SimulatorConfig  # noqa: E402

RATE = 20.0
LATENCY = 0.2
PROCESSES = 4
KEY = "xai-gateway-benchmark-key-0123456789"
CLIENT_KEY = "gateway-benchmark-client"
_LISTENING = re.compile(r"listening on (http://\S+/v1)")


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario's figures."""

    way: str
    jobs: int
    makespan: float
    first_call: float
    ideal: float
    rate_limited: int
    requests: int
    failed: int
    cpu_ms_per_request: float | None
    errors: tuple[str, ...] = ()


async def _warm_up(sdk: Any) -> None:
    """Run the SDK's call path once before the start signal, spending no credit anywhere.

    A cold client spends its first ~0.15 s of CPU importing and building what its first call
    needs, four of them at once on a shared machine ~0.8 s before any call leaves: a start-up
    cost of the benchmark's fresh processes, not of the gateway (a real app's client is warm).
    The call is refused before any limit is charged: by the gateway for its priority header,
    by the server for its role. The gateway's own first contact is still measured.
    """
    import openai

    await sdk.models.list()
    with contextlib.suppress(openai.APIStatusError):
        await sdk.chat.completions.create(
            model="grok-4",
            messages=[{"role": "wizard", "content": "warm-up"}],
            max_tokens=1,
            extra_headers={"x-grok-scheduler-priority": "warm-up"},
        )


# -- one client process -------------------------------------------------------------------
async def client(args: argparse.Namespace) -> None:
    """Wait for "go" on stdin, send every job at once with openai-python, print a summary."""
    import openai

    sdk = openai.AsyncOpenAI(
        base_url=args.base_url, api_key=args.api_key, max_retries=args.retries, timeout=600
    )
    async with sdk:
        await _warm_up(sdk)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcomes = await asyncio.gather(
            *(
                sdk.chat.completions.create(
                    model="grok-4",
                    messages=[{"role": "user", "content": f"job {i}"}],
                    max_tokens=16,
                )
                for i in range(args.jobs)
            ),
            return_exceptions=True,
        )
        end = time.monotonic()
    errors = [type(outcome).__name__ for outcome in outcomes if isinstance(outcome, BaseException)]
    print(json.dumps({"end": end, "failed": len(errors), "errors": errors}), flush=True)


# -- the gateway process ------------------------------------------------------------------
class GatewayProcess:
    """``grok-scheduler serve`` in front of the simulator; its CPU time read from /proc."""

    def __init__(
        self, upstream: str, rps: float | None, loop: str = "asyncio", http: str = "auto"
    ) -> None:
        self._upstream = upstream
        self._rps = rps
        self._loop = loop
        self._http = http
        self.process: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        command = [sys.executable, "-m", "grok_scheduler.cli", "serve", "--port", "0"]
        command += ["--base-url", self._upstream, "--client-key", CLIENT_KEY]
        command += ["--loop", self._loop, "--http", self._http]
        if self._rps is not None:
            command += ["--rps", str(self._rps)]
        self.process = await asyncio.create_subprocess_exec(
            *command,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
            # `-m` puts the working directory first on the path: run from another checkout,
            # the gateway measured would be that checkout's code, not this file's.
            cwd=ROOT,
        )
        assert self.process.stderr is not None
        line = (await self.process.stderr.readline()).decode()
        match = _LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"the gateway did not start: {line!r}")
        self.base_url = match.group(1)
        # Keep reading its log: a full pipe would stall the gateway mid-run.
        self._drain = asyncio.create_task(self._read_log(self.process.stderr))

    @staticmethod
    async def _read_log(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    def cpu_seconds(self) -> float:
        """User + system CPU time of the gateway so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, so utime (14) and stime (15) are 11 and 12.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await self.process.wait()
        if self._drain is not None:
            await self._drain


# -- the conductor ------------------------------------------------------------------------
async def scenario(
    sim: Simulator, way: str, jobs: int, loop: str = "asyncio", http: str = "auto"
) -> Row:
    """Run four clients against the gateway (or directly) and measure."""
    await asyncio.sleep(1.5)  # let the server's bucket refill after the previous scenario
    gateway = None
    if way.startswith("gateway"):
        gateway = GatewayProcess(sim.base_url, RATE if way == "gateway" else None, loop, http)
        await gateway.start()
    base_url = gateway.base_url if gateway else sim.base_url
    api_key, retries = (CLIENT_KEY, 0) if gateway else (KEY, 2)
    processes = []
    for _ in range(PROCESSES):
        command = [sys.executable, __file__, "--client", "--jobs", str(jobs // PROCESSES)]
        command += ["--base-url", base_url, "--api-key", api_key, "--retries", str(retries)]
        processes.append(
            await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )
    for process in processes:
        assert process.stdout is not None
        assert (await process.stdout.readline()).strip() == b"ready"
    sim.reset_stats()
    cpu_before = gateway.cpu_seconds() if gateway else 0.0
    start = time.monotonic()
    for process in processes:  # all start together, then all are awaited
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    summaries = []
    for process in processes:
        out, _ = await process.communicate()
        summaries.append(json.loads(out.decode().strip().splitlines()[-1]))
    cpu = None
    if gateway is not None:
        cpu = 1000 * (gateway.cpu_seconds() - cpu_before) / jobs
        await gateway.stop()
    total = jobs // PROCESSES * PROCESSES
    return Row(
        way=way,
        jobs=total,
        makespan=max(s["end"] for s in summaries) - start,
        # The world's clock is time.monotonic, as start is.
        first_call=min(sim.stats.accepted_times, default=start) - start,
        ideal=max(0.0, total - RATE) / RATE + LATENCY,
        rate_limited=sim.stats.rate_limited,
        requests=sim.stats.requests,
        failed=sum(s["failed"] for s in summaries),
        cpu_ms_per_request=cpu,
        errors=tuple(error for s in summaries for error in s["errors"]),
    )


def report(rows: list[Row], loop: str, http: str) -> None:
    """Print the table."""
    print(f"simulator: {RATE:g} rps (burst {RATE:g}), latency {LATENCY}s; {PROCESSES} processes")
    print(f"gateway event loop: {loop}; server: {http}; load average {os.getloadavg()[0]:.2f}")
    header = (
        f"{'way':16} {'jobs':>5} {'makespan':>9} {'ideal':>7} {'ratio':>6} {'1st call':>8} "
        f"{'ratio*':>6} {'429s':>5} {'429 %':>6} {'failed':>6} {'gw CPU/req':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        share = 100.0 * row.rate_limited / max(1, row.requests)
        cpu = f"{row.cpu_ms_per_request:.2f} ms" if row.cpu_ms_per_request is not None else "-"
        from_first = (row.makespan - row.first_call) / row.ideal
        print(
            f"{row.way:16} {row.jobs:5d} {row.makespan:8.2f}s {row.ideal:6.2f}s "
            f"{row.makespan / row.ideal:6.2f} {row.first_call:7.2f}s {from_first:6.2f} "
            f"{row.rate_limited:5d} {share:5.1f}% {row.failed:6d} {cpu:>10}"
        )
    print("1st call: the first call the server took; ratio*: makespan / ideal from it")
    for row in rows:
        if row.errors:
            kinds = Counter(row.errors).most_common()
            print(f"{row.way}: failed with " + ", ".join(f"{n} {kind}" for kind, n in kinds))


async def conduct(args: argparse.Namespace) -> None:
    """Run every scenario against one simulator and print the comparison."""
    config = SimulatorConfig(
        requests_per_second=RATE, latency=LATENCY, latency_jitter=0.25, api_key=KEY
    )
    rows = []
    async with Simulator(config) as sim:
        for way in ("gateway", "gateway, learned", "direct"):
            rows.append(await scenario(sim, way, args.jobs, args.loop, args.http))
            print(f"  done: {way}", file=sys.stderr, flush=True)
    report(rows, args.loop, args.http)


def main() -> None:
    """Parse the command line; conduct, or be one client."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--http", choices=("auto", "httptools", "aiohttp"), default="auto")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--retries", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop == "auto" and not args.client:
        # As serve resolves it, so the table names the loop that ran.
        args.loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if args.http == "auto" and not args.client:
        args.http = "httptools" if importlib.util.find_spec("httptools") else "aiohttp"
    asyncio.run(client(args) if args.client else conduct(args))


if __name__ == "__main__":
    main()
