"""``grok-scheduler demo``: the bulk path end to end, on the built-in simulator.

It starts the simulator in this process on a free local port, writes a few hundred sample
prompts (both input shapes) to a temporary JSONL file and runs them through exactly the code of
``grok-scheduler run``: the live display, the summary, the output file. The simulator enforces a
rate limit, sends OpenAI-style rate-limit headers and fails a few calls on purpose, so the demo
shows limits being learned, 429s and retries being absorbed, and every prompt still answered.

``--real`` sends a handful of prompts to the real xAI API instead (needs ``XAI_API_KEY``).
The temporary folder is removed at the end: pass ``--output`` to keep the results.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import anyio

from .._core._scheduler import DEFAULT_BASE_URL
from ._exit import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from ._logging import LOG_LEVELS, configure_logging
from ._options import RunOptions, check_writable
from ._run import run_bulk

__all__ = ["add_demo_parser", "run_demo", "write_sample_prompts"]

_TOPICS = (
    "the history of the printing press",
    "how vaccines train the immune system",
    "why the sky is blue",
    "the rules of chess for a beginner",
    "how a compiler turns code into machine instructions",
    "the water cycle",
    "what a rate limiter does",
    "the causes of the French Revolution",
    "how photosynthesis stores energy",
    "the difference between weather and climate",
    "how public key cryptography works",
    "the life cycle of a star",
)
_TASKS = (
    "Explain {topic} in two sentences.",
    "Write a haiku about {topic}.",
    "List three surprising facts about {topic}.",
    "Summarise {topic} for a ten-year-old.",
)


def write_sample_prompts(path: Path, count: int, *, model: str | None = None) -> None:
    """Write ``count`` sample prompts, alternating the batch and the plain input shape."""
    with open(path, "w", encoding="utf-8") as out:
        for n in range(count):
            topic = _TOPICS[n % len(_TOPICS)]
            prompt = _TASKS[(n // len(_TOPICS)) % len(_TASKS)].format(topic=topic)
            priority = (0, 1, 2, 2, 3)[n % 5]
            record: dict[str, object]
            if n % 2:
                body: dict[str, object] = {
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 64,
                }
                if model:
                    body["model"] = model
                record = {
                    "custom_id": f"demo-{n:05d}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "priority": priority,
                    "body": body,
                }
            else:
                record = {"id": f"demo-{n:05d}", "prompt": prompt, "max_tokens": 64}
                record["priority"] = priority
            out.write(json.dumps(record) + "\n")


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="run a few hundred sample prompts against the built-in simulator",
        description="Start the built-in xAI simulator on a free local port and run sample "
        "prompts through `grok-scheduler run`, with the live progress display.",
    )
    add = parser.add_argument
    add("--prompts", type=int, default=300, metavar="N", help="how many prompts (default 300)")
    add("--real", action="store_true", help="send a handful of prompts to the real xAI API")
    add("--model", default="grok-4", help="model name (default grok-4)")
    add(
        "--output",
        metavar="PATH",
        help="keep the results in PATH (default: a temporary folder, removed at the end)",
    )
    add("--progress", choices=("auto", "live", "plain", "off"), default="auto")
    add("--progress-interval", type=float, default=2.0, metavar="SECONDS")
    add("--log-level", choices=LOG_LEVELS, default="error")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; return the exit status of the run (0 when every prompt succeeded)."""
    if args.prompts < 1:
        print("grok-scheduler demo: error: --prompts must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    key = os.environ.get("XAI_API_KEY", "").strip()
    if args.real and not key:
        print("grok-scheduler demo: error: --real needs XAI_API_KEY", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        try:
            check_writable(Path(args.output), "the output")
        except UsageError as exc:
            print(f"grok-scheduler demo: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="grok-scheduler-demo-") as workdir:
        return _run_in(Path(workdir), args, key)


def _run_in(workdir: Path, args: argparse.Namespace, key: str) -> int:
    count = min(args.prompts, 5) if args.real else args.prompts
    source = workdir / "prompts.jsonl"
    write_sample_prompts(source, count)
    output = Path(args.output) if args.output else workdir / "results.jsonl"
    options = RunOptions(
        input=str(source),
        output=output,
        api_key=key if args.real else "demo-placeholder-key",
        base_url=DEFAULT_BASE_URL,
        model=args.model,
        concurrency=32 if not args.real else 4,
        overwrite=True,
        progress=args.progress,
        progress_interval=args.progress_interval,
        max_attempts=8,
    )
    where = "the real xAI API" if args.real else "the built-in simulator"
    print(f"grok-scheduler demo: {count} prompts from {source} to {where}", file=sys.stderr)
    restore = configure_logging(args.log_level)
    try:
        code = anyio.run(functools.partial(_demo, options, real=args.real), backend="asyncio")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore()
    if args.output:
        print(f"grok-scheduler demo: results in {output}", file=sys.stderr)
        print(str(output))
    else:
        print(
            "grok-scheduler demo: the temporary folder is removed; pass --output PATH to keep "
            "the results",
            file=sys.stderr,
        )
    return code


async def _demo(options: RunOptions, *, real: bool) -> int:
    from ..simulator import Simulator, SimulatorConfig

    if real:
        return (await run_bulk(options)).exit_code
    config = SimulatorConfig(
        requests_per_second=60.0,
        tokens_per_minute=400_000,
        headers="openai-60s",
        latency=0.25,
        latency_jitter=0.5,
        completion_tokens=48,
        faults={"500": 0.02, "capacity_429": 0.02},
        seed=None,
    )
    async with Simulator(config) as simulator:
        return (await run_bulk(replace(options, base_url=simulator.base_url))).exit_code
