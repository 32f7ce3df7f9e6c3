"""benchmarks/gateway.py's ``--rps 20`` scenario with the gateway starved of CPU: are calls lost?

The gateway is stopped (SIGSTOP) for ``--stop-ms`` of every ``--stop-ms + --run-ms``, a loop
that falls behind without a profiler and without burning anyone's CPU. Each run prints the
calls lost (and their types) and what the kernel counted meanwhile: listen-queue overflows,
SYN cookies sent and failed, established connections reset. The counters are the machine's
(/proc/net), so other programs' traffic can add to them; lost calls are this run's own.

Run::

    .venv/bin/python benchmarks/gateway_starved.py [--runs 3] [--loop asyncio uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections import Counter
from pathlib import Path

import gateway as bench

from grok_scheduler.simulator import Simulator, SimulatorConfig

COUNTERS = (
    "TcpExt.ListenOverflows",
    "TcpExt.SyncookiesSent",
    "TcpExt.SyncookiesFailed",
    "Tcp.EstabResets",
)


def kernel_counters() -> dict[str, int]:
    """TCP counters of /proc/net/netstat and /proc/net/snmp, as ``Group.Name``."""
    counters: dict[str, int] = {}
    for table in ("/proc/net/netstat", "/proc/net/snmp"):
        lines = Path(table).read_text().splitlines()
        for names, values in zip(lines[::2], lines[1::2], strict=True):
            group = names.split(":")[0]
            for name, value in zip(names.split()[1:], values.split()[1:], strict=True):
                counters[f"{group}.{name}"] = int(value)
    return counters


def starved(stop_s: float, run_s: float) -> type[bench.GatewayProcess]:
    """A gateway process stopped for ``stop_s`` of every ``stop_s + run_s`` while it runs."""

    class Starved(bench.GatewayProcess):
        _starver: asyncio.Task[None] | None = None

        async def start(self) -> None:
            await super().start()
            self._starver = asyncio.create_task(self._starve())

        async def _starve(self) -> None:
            assert self.process is not None
            try:
                while True:
                    self.process.send_signal(signal.SIGSTOP)
                    await asyncio.sleep(stop_s)
                    self.process.send_signal(signal.SIGCONT)
                    await asyncio.sleep(run_s)
            finally:
                self.process.send_signal(signal.SIGCONT)

        async def stop(self) -> None:
            if self._starver is not None:
                self._starver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._starver
            await super().stop()

    return Starved


async def conduct(args: argparse.Namespace) -> None:
    """Every loop, ``--runs`` times, one starved scenario each; a line per run."""
    bench.GatewayProcess = starved(args.stop_ms / 1000, args.run_ms / 1000)  # type: ignore[misc]
    config = SimulatorConfig(
        requests_per_second=bench.RATE,
        latency=bench.LATENCY,
        latency_jitter=0.25,
        api_key=bench.KEY,
    )
    print(f"gateway stopped {args.stop_ms:g} ms of every {args.stop_ms + args.run_ms:g} ms")
    async with Simulator(config) as sim:
        for run in range(args.runs):
            for loop in args.loop:
                before = kernel_counters()
                row = await bench.scenario(sim, "gateway", args.jobs, loop)
                after = kernel_counters()
                kernel = " ".join(
                    f"{name.split('.')[1]}={after[name] - before[name]}" for name in COUNTERS
                )
                kinds = ", ".join(f"{n} {kind}" for kind, n in Counter(row.errors).most_common())
                print(
                    f"run {run + 1} {loop:8} lost {row.failed:3d} of {row.jobs} "
                    f"({kinds or 'none'}); load {os.getloadavg()[0]:.1f}; kernel: {kernel}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", nargs="+", default=["asyncio", "uvloop"])
    parser.add_argument("--stop-ms", type=float, default=80.0)
    parser.add_argument("--run-ms", type=float, default=20.0)
    asyncio.run(conduct(parser.parse_args()))


if __name__ == "__main__":
    main()
