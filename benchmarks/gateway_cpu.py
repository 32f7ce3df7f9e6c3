"""The gateway's CPU per request, and its instructions per request (which load does not change).

``benchmarks/gateway.py`` measures the gateway with four openai-python processes around it;
their CPU shares the machine with it, so its figure moves with the load. Here the clients are
cheap: each job replays the bytes openai-python sends (its 17 headers, the body of
``chat.completions.create``) on a new connection, as the benchmark's clients do, all at once.
The simulator (in this process) takes ``--rps`` strictly; the gateway (``grok-scheduler serve
--rps``, or told no limit with ``--learned``) spreads the calls over ``jobs / rps`` seconds.

Printed: the gateway's CPU per job from /proc around the jobs (start-up and a few warm-up calls
not counted) and, with ``--callgrind``, the instructions per job that valgrind counted over
the same span (instrumentation switched on and off around it with ``callgrind_control``).

Run::

    .venv/bin/python benchmarks/gateway_cpu.py [--jobs 400] [--rps 20] [--learned]
        [--http auto|httptools|aiohttp] [--loop auto|asyncio|uvloop] [--callgrind]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grok_scheduler.simulator import Simulator, SimulatorConfig  # noqa: E402

KEY = "xai-gateway-benchmark-key-0123456789"
CLIENT_KEY = "gateway-benchmark-client"
# What openai-python 3.x sent for chat.completions.create (captured once; Host is set per run).
SDK_HEADERS = (
    "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    f"authorization: Bearer {CLIENT_KEY}\r\naccept: application/json\r\n"
    "content-type: application/json\r\nuser-agent: AsyncOpenAI/Python 3.57.0\r\n"
    "x-stainless-lang: python\r\nx-stainless-package-version: 3.57.0\r\n"
    "x-stainless-os: Linux\r\nx-stainless-arch: x64\r\nx-stainless-runtime: CPython\r\n"
    "x-stainless-runtime-version: 3.11.7\r\nx-stainless-async: async:asyncio\r\n"
    "x-stainless-retry-count: 0\r\nx-stainless-read-timeout: 600\r\n"
)


def request_bytes(port: int, job: int) -> bytes:
    message = {"role": "user", "content": f"job {job}"}
    body = json.dumps({"model": "grok-4", "messages": [message], "max_tokens": 16}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{SDK_HEADERS}"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


async def one_job(port: int, job: int) -> int:
    """One call on a new connection; its status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(port, job))
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def callgrind_total(out: str) -> int:
    """Instructions in the dump taken at the end of the jobs (``callgrind_control -d``)."""
    for line in Path(out + ".1").read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError("no totals in the callgrind dump")


async def callgrind_control(*args: str | int) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *map(str, args),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await control.wait() != 0:
        raise RuntimeError(f"callgrind_control {args} failed")


async def run(args: argparse.Namespace) -> None:
    config = SimulatorConfig(
        requests_per_second=args.rps, latency=0.2, latency_jitter=0.25, api_key=KEY
    )
    out = os.path.join(tempfile.mkdtemp(), "callgrind.out")
    async with Simulator(config) as sim:
        command = [sys.executable, "-m", "grok_scheduler.cli", "serve", "--port", "0"]
        command += ["--base-url", sim.base_url, "--client-key", CLIENT_KEY]
        command += ["--loop", args.loop] + (["--http", args.http] if args.http != "auto" else [])
        if args.rps and not args.learned:
            command += ["--rps", str(args.rps)]
        if args.callgrind:
            valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            command = [*valgrind, f"--callgrind-out-file={out}", *command]
        gateway = await asyncio.create_subprocess_exec(
            *command,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
            # `-m` puts the working directory first on the path: run from another checkout,
            # the gateway measured would be that checkout's code, not this file's.
            cwd=ROOT,
        )
        assert gateway.stderr is not None
        found = None
        while found is None:
            line = await gateway.stderr.readline()
            if not line:
                raise RuntimeError("the gateway did not start")
            found = re.search(rb"listening on http://[^:]+:(\d+)/v1", line)
        port = int(found.group(1))
        drain = asyncio.create_task(gateway.stderr.read())
        await asyncio.gather(*(one_job(port, i) for i in range(5)))  # warm-up, not counted
        await asyncio.sleep(1.5)  # the server's bucket refills
        if args.callgrind:
            await callgrind_control("-i", "on", gateway.pid)
        sim.reset_stats()
        before, start = cpu_seconds(gateway.pid), time.monotonic()
        statuses = await asyncio.gather(*(one_job(port, i) for i in range(args.jobs)))
        cpu, wall = cpu_seconds(gateway.pid) - before, time.monotonic() - start
        if args.callgrind:
            await callgrind_control("-i", "off", gateway.pid)
            await callgrind_control("-d", gateway.pid)
        gateway.send_signal(signal.SIGTERM)
        await gateway.wait()
        await drain
    ok = sum(status == 200 for status in statuses)
    limit = "learned" if args.learned else f"--rps {args.rps:g}"
    print(
        f"server {args.http}, loop {args.loop}, {limit}: "
        f"{args.jobs} jobs ({ok} answered 200) in {wall:.1f} s, upstream requests "
        f"{sim.stats.requests} ({sim.stats.rate_limited} 429s); load {os.getloadavg()[0]:.2f}"
    )
    note = " (under valgrind: not the real figure)" if args.callgrind else ""
    print(f"gateway CPU per job: {1000 * cpu / args.jobs:.2f} ms{note}")
    if args.callgrind:
        print(f"instructions per job: {callgrind_total(out) / args.jobs / 1e6:.3f} M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--learned", action="store_true", help="serve told no limit")
    parser.add_argument("--http", choices=("auto", "httptools", "aiohttp"), default="auto")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--callgrind", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
