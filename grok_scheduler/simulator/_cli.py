"""``grok-scheduler simulate`` / ``python -m grok_scheduler.simulator``: run the simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from ._catalogue import CATALOGUE
from ._config import (
    FAULT_KINDS,
    HEADER_MODES,
    LATENCY_DISTS,
    RATE_LIMIT_BODIES,
    LimitChange,
    ModelLimits,
    SimulatorConfig,
)
from ._server import Simulator


def _optional_rate(text: str) -> float | None:
    """A positive rate, or ``None`` (unlimited) for ``none`` / ``0``."""
    if text.strip().lower() in {"none", "unlimited", "0", ""}:
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a rate cannot be negative")
    return value or None


def _fault(text: str) -> tuple[str, float]:
    kind, sep, probability = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        known = ", ".join(sorted(FAULT_KINDS))
        raise argparse.ArgumentTypeError(f"expected KIND=PROBABILITY with KIND one of: {known}")
    try:
        value = float(probability)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {probability!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a probability must be within [0, 1]")
    return kind, value


def _model_limits(text: str) -> tuple[str, ModelLimits]:
    """``MODEL=RPS:TPM[:RPM]``; ``none`` for unlimited, ``0:0`` for a model the team lacks."""
    model, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not model or len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError("expected MODEL=RPS:TPM[:RPM], e.g. grok-4=5:16000")
    try:
        values = [_limit_value(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a limit in {spec!r}") from None
    limits = ModelLimits(*values)
    try:
        limits.validate()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return model, limits


def _limit_value(text: str) -> float | None:
    # Unlike --rps, a 0 here means "not available to the team", so only words mean unlimited.
    if text.strip().lower() in {"none", "unlimited", "-", ""}:
        return None
    return float(text)


def _limit_change(text: str) -> LimitChange:
    """``AFTER:FACTOR[:MODEL]``: from AFTER seconds on, multiply the limits by FACTOR."""
    after, _, rest = text.partition(":")
    factor, _, model = rest.partition(":")
    try:
        change = LimitChange(float(after), float(factor), model or None)
    except ValueError:
        raise argparse.ArgumentTypeError("expected AFTER:FACTOR[:MODEL], e.g. 60:0.5") from None
    if not (change.after >= 0 and change.factor > 0):
        raise argparse.ArgumentTypeError("AFTER must be >= 0 and FACTOR positive")
    return change


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8000, help="port to listen on, 0 for any (default 8000)")
    add("--rps", type=_optional_rate, default=20.0, help="requests/s limit; 'none' = unlimited")
    add("--tpm", type=_optional_rate, default=None, help="tokens/min limit (default unlimited)")
    add("--burst-seconds", type=float, default=1.0, help="request bucket = rps * this (>= 1)")
    add("--headers", choices=HEADER_MODES, default="none", help="rate-limit header family")
    add("--rpm", type=_optional_rate, default=None, help="requests/min limit (default none)")
    add(
        "--model-limits",
        type=_model_limits,
        action="append",
        default=[],
        metavar="MODEL=RPS:TPM[:RPM]",
        help="limits of one model (repeatable; 'none' = unlimited, 0:0 = not available)",
    )
    add(
        "--limit-change",
        type=_limit_change,
        action="append",
        default=[],
        metavar="AFTER:FACTOR[:MODEL]",
        help="from AFTER seconds on, multiply the limits by FACTOR (repeatable)",
    )
    add(
        "--rate-limit-body",
        choices=RATE_LIMIT_BODIES,
        default="plain",
        help="429 wording: plain, or xai's limit-stating text",
    )
    add("--rate-limit-dash", choices=("em", "hyphen"), default="em", help="dash in xai bodies")
    add(
        "--no-rate-limit-preamble",
        action="store_true",
        help='leave "Your team\'s rate limit is" out of xai bodies',
    )
    add("--latency", type=float, default=0.05, help="base (median) seconds per request")
    add("--latency-per-token", type=float, default=0.0, help="extra seconds per output token")
    add("--latency-jitter", type=float, default=0.0, help="uniform +- fraction of the latency")
    add("--latency-dist", choices=LATENCY_DISTS, default="uniform", help="latency distribution")
    add("--latency-sigma", type=float, default=0.0, help="lognormal shape (1 = heavy tail)")
    add("--latency-max", type=float, default=3600.0, help="no call takes longer than this")
    add(
        "--stream-ttft",
        type=float,
        default=None,
        help="seconds to a stream's first byte (default: a quarter of the latency, <= 0.5 s)",
    )
    add("--completion-tokens", type=int, default=16, help="tokens each answer generates")
    add("--reasoning-tokens", type=int, default=0, help="reasoning tokens each answer uses")
    add(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=P",
        help="inject a fault with probability P per request (repeatable)",
    )
    add("--hang-seconds", type=float, default=3600.0, help="how long a 'hang' fault holds")
    add("--seed", type=int, default=0, help="seed of the fault and jitter generators")
    add(
        "--model",
        action="append",
        default=[],
        help="accept only these models (repeatable; default: grok-4, grok-4.3, grok-4-fast, "
        "grok-3-mini and those of --model-limits; others get xAI's 404)",
    )
    add("--any-model", action="store_true", help="accept any model name")
    add("--neighbour-share", type=float, default=0.0, help="share of the limit used by others")
    add(
        "--api-key-env",
        metavar="NAME",
        default=None,
        help="require the key held in this environment variable (default: accept any key)",
    )


def _model_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The models served: as xAI refuses names it does not know, so does the command line."""
    if args.any_model:
        return ()
    named = tuple(args.model) or CATALOGUE
    return named + tuple(name for name, _ in args.model_limits if name not in named)


def add_simulate_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``simulate`` sub-command; the main CLI then calls ``run_simulate(args)``."""
    parser = subparsers.add_parser(
        "simulate",
        help="run a local xAI-compatible API server with strict rate limits and faults",
        description="Run a local xAI-compatible API server until Ctrl-C.",
    )
    add_simulate_arguments(parser)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Build the simulator configuration from parsed options (``ValueError`` if invalid)."""
    api_key: str | None = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ValueError(f"environment variable {args.api_key_env} is not set or empty")
    config = SimulatorConfig(
        requests_per_second=args.rps,
        tokens_per_minute=args.tpm,
        burst_seconds=args.burst_seconds,
        headers=args.headers,
        api_key=api_key,
        latency=args.latency,
        latency_per_token=args.latency_per_token,
        latency_jitter=args.latency_jitter,
        completion_tokens=args.completion_tokens,
        reasoning_tokens=args.reasoning_tokens,
        faults=dict(args.fault),
        hang_seconds=args.hang_seconds,
        seed=args.seed,
        model_names=_model_names(args),
        neighbour_share=args.neighbour_share,
        requests_per_minute=args.rpm,
        model_limits=dict(args.model_limits),
        limit_changes=tuple(args.limit_change),
        rate_limit_body=args.rate_limit_body,
        rate_limit_dash="\u2014" if args.rate_limit_dash == "em" else "-",
        rate_limit_preamble=not args.no_rate_limit_preamble,
        latency_dist=args.latency_dist,
        latency_sigma=args.latency_sigma,
        latency_max=args.latency_max,
        stream_ttft=args.stream_ttft,
    )
    config.validate()
    return config


async def _serve(config: SimulatorConfig, host: str, port: int) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        # Also when started in the background with SIGINT ignored (shells do that to jobs).
        loop.add_signal_handler(signal.SIGINT, stopped.set)
    async with Simulator(config, host=host, port=port) as sim:
        rps = config.requests_per_second or "unlimited"
        tpm = config.tokens_per_minute or "unlimited"
        print(
            f"grok-scheduler simulator listening on {sim.base_url} "
            f"(rps={rps}, tpm={tpm}, headers={config.headers}); Ctrl-C to stop",
            flush=True,
        )
        await stopped.wait()


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulator until Ctrl-C (or SIGTERM); return the exit status."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"grok-scheduler simulate: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"grok-scheduler simulate: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m grok_scheduler.simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m grok_scheduler.simulator",
        description="Run a local xAI-compatible API server until Ctrl-C.",
    )
    add_simulate_arguments(parser)
    return run_simulate(parser.parse_args(argv))
