"""Helpers shared by the benchmarks: a simulator in its own process, measured child processes.

Benchmarks run the server in a separate process so that its CPU does not count against the
client, and run each client in a child process so that its peak RSS can be read exactly
(``os.wait4`` returns the resource usage of that one child).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grok_scheduler import FakeClock, TransportResponse
    from grok_scheduler.simulator import SimulatorConfig

__all__ = [
    "Measured",
    "SimulatorProcess",
    "recording_server",
    "run_measured",
    "write_plain_prompts",
]

Handler = Callable[[str, dict[str, Any]], Awaitable["TransportResponse"]]


def recording_server(
    config: SimulatorConfig, clock: FakeClock
) -> tuple[Handler, list[tuple[float, float, int]]]:
    """The virtual simulator as a ``MockTransport`` handler, and its record of every request:
    (sent, answered, status)."""
    from grok_scheduler import TransportResponse
    from grok_scheduler.simulator import VirtualServer

    server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
    sent: list[tuple[float, float, int]] = []

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        started = clock.now()
        response = await server.respond(path, body)
        sent.append((started, clock.now(), response.status))
        return TransportResponse(response.status, response.body, response.headers)

    return handler, sent


ROOT = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(r"listening on (http://\S+/v1)")


class SimulatorProcess:
    """``python -m grok_scheduler.simulator`` on a free port, stopped by SIGTERM on exit."""

    def __init__(self, *args: str) -> None:
        self._args = ["--port", "0", *args]
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> SimulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "grok_scheduler.simulator", *self._args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        match = _LISTENING.search(line)
        if match is None:
            self._process.kill()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.base_url = match.group(1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True, slots=True)
class Measured:
    """A finished child process: exit status, wall time, peak RSS and its output."""

    returncode: int
    wall_seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str


def run_measured(command: Sequence[str], *, env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` to completion and measure its own peak RSS (not the benchmark's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=ROOT, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in kilobytes on Linux.
        return Measured(process.returncode, wall, usage.ru_maxrss / 1024, out.read(), err.read())


def write_plain_prompts(path: Path, lines: int, *, max_tokens: int = 16) -> None:
    """``lines`` prompts in the plain input shape, written in chunks."""
    with open(path, "w", encoding="utf-8") as out:
        chunk: list[str] = []
        for n in range(lines):
            record = {
                "id": f"q{n:07d}",
                "prompt": f"Benchmark prompt number {n}: say something short about {n % 97}.",
                "max_tokens": max_tokens,
            }
            chunk.append(json.dumps(record))
            if len(chunk) == 10_000:
                out.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            out.write("\n".join(chunk) + "\n")
