"""``grok-scheduler serve`` as a process: SIGTERM drains the calls in flight, then exits 0.

The gateway runs as a real subprocess in front of the simulator (whose answers take a while,
so calls are in flight when the signal comes); ``--metrics-port`` moves /metrics to its own
port. Waits are bounded polls of the simulator's counters, never timing assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import select
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
import pytest_asyncio
from aiohttp import web
from gateway_keys import KEY

from grok_scheduler.cli import main
from grok_scheduler.cli._serve import _listen, _loop_factory, add_serve_parser
from grok_scheduler.simulator import Simulator, SimulatorConfig

_UVLOOP = pytest.param(
    "uvloop",
    marks=pytest.mark.skipif(
        importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
    ),
)

BODY = {"model": "grok-4.3", "messages": [{"role": "user", "content": "drain me"}]}


@pytest_asyncio.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(latency=1.0, requests_per_second=None, api_key=KEY)
    async with Simulator(config) as sim:
        yield sim


async def _start_gateway(
    sim: Simulator, *extra: str
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """The gateway process and the URLs it printed (main first, then metrics if asked)."""
    env = {**os.environ, "XAI_API_KEY": KEY}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "grok_scheduler.cli", "serve", "--port", "0"),
        *("--base-url", sim.base_url, *extra),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    urls: list[str] = []
    wanted = 2 if "--metrics-port" in extra else 1
    while len(urls) < wanted:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "the gateway exited before listening"
        found = re.search(r"(http://\S+)", line)
        if found:
            urls.append(found.group(1))
    return process, urls


@pytest.mark.parametrize("loop", ["asyncio", _UVLOOP])
async def test_sigterm_drains_calls_in_flight_and_exits_0(slow_sim: Simulator, loop: str) -> None:
    """Calls accepted before SIGTERM are answered 200; then the port closes and the exit is 0."""
    process, (base,) = await _start_gateway(slow_sim, "--loop", loop)
    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            calls = [
                asyncio.create_task(http.post(f"{base}/chat/completions", json=BODY))
                for _ in range(3)
            ]
            for _ in range(1000):
                if slow_sim.stats.in_flight >= 1:
                    break
                await asyncio.sleep(0.01)
            # One call upstream (first contact holds the others a moment), two accepted by the
            # gateway: all of them are in flight to their clients and must be answered.
            assert slow_sim.stats.in_flight >= 1
            process.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*calls)
            assert [answer.status_code for answer in answers] == [200, 200, 200]
            assert all(answer.json()["choices"][0]["message"]["content"] for answer in answers)
            assert await asyncio.wait_for(process.wait(), 30) == 0
            with pytest.raises(httpx2.ConnectError):
                await http.post(f"{base}/chat/completions", json=BODY)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert slow_sim.stats.requests == 3


async def test_metrics_port_serves_metrics_apart(slow_sim: Simulator) -> None:
    """With --metrics-port, /metrics answers there and no longer on the clients' port."""
    process, (base, metrics) = await _start_gateway(slow_sim, "--metrics-port", "0")
    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            scraped = await http.get(metrics)
            assert scraped.status_code == 200 and "grok_scheduler" in scraped.text
            health = await http.get(metrics.replace("/metrics", "/healthz"))
            assert health.status_code == 200
            main_root = base.removesuffix("/v1")
            assert (await http.get(f"{main_root}/metrics")).status_code == 404
            assert (await http.get(f"{main_root}/healthz")).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_loop_uvloop_without_uvloop_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for uvloop where it is not installed says how to get it, and serves nothing."""
    monkeypatch.setenv("XAI_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert main(["serve", "--port", "0", "--loop", "uvloop"]) == 2
    assert "pip install uvloop" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed")
def test_loop_auto_is_the_default_and_runs_on_uvloop_when_installed() -> None:
    """With uvloop importable, a plain ``serve`` runs on it: about half the CPU per call."""
    import uvloop

    args = _serve_args([])
    assert args.loop == "auto"
    assert _loop_factory(args.loop) is uvloop.new_event_loop
    assert _loop_factory("asyncio") is None


def test_loop_auto_without_uvloop_is_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where uvloop is not installed the default serves on asyncio's loop, no error."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    args = _serve_args([])
    assert args.loop == "auto"
    assert _loop_factory(args.loop) is None


def _somaxconn() -> int:
    """Linux's cap on a listen backlog; 0 where it cannot be read (not Linux)."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return 0


BURST = 400  # the connections benchmarks/gateway.py's four clients open at once


@pytest.mark.skipif(_somaxconn() < 2 * BURST, reason="needs Linux with somaxconn >= 800")
async def test_a_burst_of_connections_is_held_while_the_loop_is_busy() -> None:
    """400 connections opened while the loop accepts none all complete their handshake.

    At aiohttp's backlog of 128 the kernel dropped the SYNs beyond the full queue, and under
    CPU starvation some of those clients were reset after SYN cookies (benchmarks/gateway.py,
    2-65 of 400 calls lost per run on either loop). The test's coroutine never awaits while
    connecting, so the loop is as busy as it can be; the deadline only bounds a failure.
    """
    runner = web.AppRunner(web.Application())
    await runner.setup()
    clients = [socket.socket() for _ in range(BURST)]
    try:
        await _listen(runner, "127.0.0.1", 0)
        port = runner.addresses[0][1]
        poller = select.poll()
        for client in clients:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            poller.register(client, select.POLLOUT)
        connected: set[int] = set()
        deadline = time.monotonic() + 3.0  # a dropped SYN is retried after 1 s, then 3 s
        while len(connected) < BURST and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                poller.unregister(fd)
                connected.add(fd)
        assert len(connected) == BURST
        assert all(client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for client in clients)
    finally:
        for client in clients:
            client.close()
        await runner.cleanup()


def _serve_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])
