"""``grok-scheduler serve``: run the local OpenAI-compatible gateway until SIGTERM.

Loopback only unless ``--allow-remote`` (and then a warning when no client key is set). On
SIGTERM or SIGINT the gateway stops accepting, lets calls in flight finish (up to
``--drain-seconds``), closes the scheduler and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import ipaddress
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .._core._scheduler import DEFAULT_BASE_URL, DEFAULT_CONCURRENCY_CAP, Scheduler
from .._errors import redact
from .._transports._base import Transport
from ._exit import EXIT_OK, EXIT_USAGE, UsageError
from ._gateway import DEFAULT_MAX_BODY_BYTES, Gateway
from ._heap import tuned_collector
from ._options import resolve_api_key

__all__ = ["add_serve_parser", "run_serve"]

DEFAULT_PORT = 8741
# How many connections the kernel holds for the gateway until its loop accepts them. At
# aiohttp's 128, a burst of new connections (benchmarks/gateway.py's clients open 400 at once)
# meeting a busy loop overflowed the queue: SYNs dropped, SYN cookies sent, and some of those
# clients' requests reset by the kernel (a ReadError in the client; the gateway never saw the
# connection), on asyncio and uvloop alike. 2048 (uvicorn's and gunicorn's default) holds
# such bursts; Linux caps it at net.core.somaxconn (4096 since 5.4).
LISTEN_BACKLOG = 2048


def add_serve_parser(subparsers: Any) -> None:
    """Add ``serve`` and its flags, with :func:`run_serve` as its handler."""
    parser = subparsers.add_parser(
        "serve",
        help="a local OpenAI-compatible gateway: every app shares one set of limits",
        description="Serve /v1/chat/completions and /v1/responses (scheduled), /v1/models, "
        "/healthz and /metrics. The upstream key is read from XAI_API_KEY and never leaves "
        "the gateway.",
    )
    add = parser.add_argument
    add("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--allow-remote", action="store_true", help="allow binding beyond loopback")
    add("--base-url", default=DEFAULT_BASE_URL, help=f"upstream (default {DEFAULT_BASE_URL})")
    add("--client-key", action="append", default=[], metavar="KEY", help="a key clients send")
    add("--client-key-file", metavar="PATH", help="client keys, one a line")
    add("--model", default="grok-4", help="model of calls that name none (default grok-4)")
    add("--rps", type=float, metavar="N", help="requests per second limit")
    add("--tpm", type=float, metavar="N", help="tokens per minute limit")
    add("--redis-url", metavar="URL", help="share the limits with other gateways via Redis")
    add("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, metavar="N")
    add(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics (and /healthz) on this port of --host instead of the main one",
    )
    add("--drain-seconds", type=float, default=60.0, metavar="S", help="SIGTERM drain bound")
    add(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop: auto (the default) runs on uvloop when it is installed "
        "(pip install 'grok-scheduler[serve]'), which spends about half the CPU per call",
    )
    add(
        "--http",
        choices=("auto", "httptools", "aiohttp"),
        default="auto",
        help="HTTP server: auto (the default) serves on the lean httptools server when "
        "httptools is installed (pip install 'grok-scheduler[serve]'), aiohttp's otherwise",
    )
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """The ``serve`` handler: runs until SIGTERM/SIGINT, then drains and returns 0."""
    try:
        api_key, keys = _checked(args)
        loop_factory = _loop_factory(args.loop)
        args.lean = _lean_server(args.http)
    except UsageError as exc:
        print(f"grok-scheduler serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(args, api_key, keys))
    return EXIT_OK


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when asked for or (``auto``) installed; None for asyncio's own.

    The gateway's own work (server, scheduler, upstream client) takes about 60% of asyncio's
    instructions per call on uvloop (callgrind, benchmarks/gateway.py), so ``auto`` prefers it.
    Its clock and timers count whole milliseconds where asyncio's count nanoseconds; the drain
    test and the benchmark run on both loops.
    """
    if name == "asyncio":
        return None
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        if name == "auto":
            return None
        raise UsageError(
            "--loop uvloop needs uvloop: pip install uvloop (or 'grok-scheduler[serve]')"
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory


def _lean_server(name: str) -> bool:
    """Whether to serve on the lean httptools server (``_lean_server.py``) rather than aiohttp's.

    The lean server spends less CPU per request (benchmarks/gateway.py); ``auto`` takes it when
    httptools is importable, and aiohttp's server otherwise (the same routes and answers).
    """
    if name == "aiohttp":
        return False
    if importlib.util.find_spec("httptools") is not None:
        return True
    if name == "auto":
        return False
    raise UsageError(
        "--http httptools needs httptools: pip install httptools (or 'grok-scheduler[serve]')"
    )


def _checked(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(upstream key, client keys), or a usage error."""
    keys = list(args.client_key)
    if args.client_key_file:
        try:
            text = Path(args.client_key_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read --client-key-file: {exc.strerror}") from None
        keys += [line.strip() for line in text.splitlines() if line.strip()]
    if not _is_loopback(args.host) and not args.allow_remote:
        raise UsageError(f"--host {args.host} is beyond loopback: add --allow-remote to mean it")
    if not _is_loopback(args.host) and not keys:
        print(
            "grok-scheduler serve: WARNING: reachable beyond this machine with no "
            "--client-key: anyone who can connect spends your key",
            file=sys.stderr,
        )
    return resolve_api_key(args.base_url, os.environ), keys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _limiter(args: argparse.Namespace, api_key: str) -> Any:
    if not args.redis_url:
        return None
    try:
        module = importlib.import_module("grok_scheduler.distributed")
        return module.RedisLimiter.from_url(
            args.redis_url,
            api_key=api_key,
            model=args.model,
            requests_per_second=args.rps,
            tokens_per_minute=args.tpm,
        )
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"--redis-url: {redact(str(exc))}") from None


async def _listen(runner: web.AppRunner, host: str, port: int) -> web.TCPSite:
    """Start serving ``runner`` on ``host:port`` with room for bursts of new connections."""
    site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
    await site.start()
    return site


async def _metrics_runner(gateway: Gateway, args: argparse.Namespace) -> web.AppRunner | None:
    """The ``--metrics-port`` server, started; None without the flag."""
    if args.metrics_port is None:
        return None
    runner = web.AppRunner(gateway.metrics_app(), access_log=None)
    await runner.setup()
    await _listen(runner, args.host, args.metrics_port)
    port = runner.addresses[0][1]
    print(
        f"grok-scheduler serve: metrics on http://{args.host}:{port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    return runner


async def _start_server(
    gateway: Gateway, args: argparse.Namespace
) -> Callable[[], Awaitable[None]]:
    """Serve the gateway on the chosen server; returns what drains and stops it."""
    metrics = args.metrics_port is None
    if getattr(args, "lean", False):
        from ._lean_server import LeanServer

        lean = LeanServer(gateway, max_body_bytes=args.max_body_bytes, metrics=metrics)
        port = await lean.start(args.host, args.port, backlog=LISTEN_BACKLOG)

        async def stop() -> None:
            await lean.shutdown(args.drain_seconds)

    else:
        # handler_cancellation: a client leaving a stream closes its upstream call at once.
        runner = web.AppRunner(
            gateway.app(metrics=metrics),
            access_log=None,
            shutdown_timeout=args.drain_seconds,
            handler_cancellation=True,
        )
        await runner.setup()
        await _listen(runner, args.host, args.port)
        port = runner.addresses[0][1]
        stop = runner.cleanup
    print(
        f"grok-scheduler serve: listening on http://{args.host}:{port}/v1",
        file=sys.stderr,
        flush=True,
    )
    return stop


def _upstream_client(args: argparse.Namespace, api_key: str) -> Transport | None:
    """With httptools (the lean server), model calls go upstream on the lean client too.

    It halves the CPU the upstream side of a call costs (benchmarks/gateway_cpu.py); None
    leaves the scheduler its aiohttp transport (``--http aiohttp``).
    """
    if not getattr(args, "lean", False):
        return None
    from .._transports._lean import LeanTransport

    return LeanTransport(
        base_url=args.base_url, api_key=api_key, max_connections=DEFAULT_CONCURRENCY_CAP
    )


async def _serve(args: argparse.Namespace, api_key: str, keys: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    scheduler = Scheduler(
        api_key=api_key,
        base_url=args.base_url,
        transport=_upstream_client(args, api_key),
        model=args.model,
        requests_per_second=args.rps,
        tokens_per_minute=args.tpm,
        limiter=_limiter(args, api_key),
        # One client's fatal answer (an unknown model) must not stop every other client's.
        stop_on_fatal=False,
    )
    async with scheduler:
        gateway = Gateway(
            scheduler,
            upstream_url=args.base_url,
            api_key=api_key,
            client_keys=keys,
            max_body_bytes=args.max_body_bytes,
        )
        server = await _start_server(gateway, args)
        metrics = await _metrics_runner(gateway, args)
        with tuned_collector():
            await stop.wait()
        gateway.stop_accepting()
        # Stops listening, then waits (up to drain-seconds) for the calls in flight.
        await server()
        if metrics is not None:
            await metrics.cleanup()
    with contextlib.suppress(NotImplementedError):
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
