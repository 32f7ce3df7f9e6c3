"""Bulk throughput and memory: `grok-scheduler run` against a bare aiohttp loop.

    .venv/bin/python benchmarks/bulk.py                # 100,000 lines, concurrency 32
    .venv/bin/python benchmarks/bulk.py --lines 20000 --concurrency 64

It writes an input file of plain-shape prompts, starts the simulator in its own process with no
limits and zero latency (its CPU does not count against the client), then runs, side by side
against that same server and with the same concurrency and requests:

* a bare aiohttp loop: N workers that read a line, POST it, read and parse the answer;
* ``Scheduler.map`` over the same lines (no output file), to isolate the scheduler's cost;
* the full bulk path, ``grok-scheduler run`` (parsing, scheduling, durable JSONL output).

Each client runs in a child process whose peak RSS is read with ``os.wait4``. Targets: the
bulk run sustains at least 60% of the bare loop's throughput, with a peak RSS under 150 MB for
100,000 lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Measured,
    SimulatorProcess,
    run_measured,
    write_plain_prompts,
)

MODEL = "grok-4"
KEY = "benchmark-placeholder-key"


# -- clients (each runs in its own child process) ---------------------------------------------
async def bare_loop(source: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    """The baseline: the least a client must do per request, with plain aiohttp."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    url = base_url.rstrip("/") + "/chat/completions"
    ok = failed = 0
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        with open(source, "rb") as lines:  # noqa: ASYNC230 (the baseline reads like the CLI)

            async def worker() -> None:
                nonlocal ok, failed
                for raw in lines:  # one shared file iterator: each line is taken once
                    item = json.loads(raw)
                    body = {
                        "model": MODEL,
                        "messages": [{"role": "user", "content": item["prompt"]}],
                        "max_tokens": item["max_tokens"],
                    }
                    async with session.post(url, data=json.dumps(body).encode()) as response:
                        payload = await response.read()
                    if response.status == 200:
                        json.loads(payload)
                        ok += 1
                    else:
                        failed += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    return {"ok": ok, "failed": failed, "seconds": seconds}


async def scheduler_map(source: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    """Scheduler.map over the same lines, results counted and dropped."""
    from grok_scheduler import Scheduler

    def items() -> Any:
        with open(source, "rb") as lines:
            for raw in lines:
                item = json.loads(raw)
                yield {"prompt": item["prompt"], "max_tokens": item["max_tokens"]}

    ok = failed = 0
    async with Scheduler(
        api_key=KEY, base_url=base_url, model=MODEL, max_concurrency=concurrency
    ) as scheduler:
        started = time.perf_counter()
        async for outcome in scheduler.map(items()):
            if outcome.ok:
                ok += 1
            else:
                failed += 1
        seconds = time.perf_counter() - started
    return {"ok": ok, "failed": failed, "seconds": seconds}


def client_main(argv: list[str]) -> int:
    """``bulk.py client KIND INPUT BASE_URL CONCURRENCY``: print a JSON result line."""
    kind, source, base_url, concurrency = argv[0], Path(argv[1]), argv[2], int(argv[3])
    run = bare_loop if kind == "bare" else scheduler_map
    result = asyncio.run(run(source, base_url, concurrency))
    print(json.dumps(result))
    return 0


# -- the benchmark ----------------------------------------------------------------------------
def _client(kind: str, source: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    measured = run_measured(
        [sys.executable, __file__, "client", kind, str(source), base_url, str(concurrency)]
    )
    if measured.returncode != 0:
        raise RuntimeError(f"{kind} client failed: {measured.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(measured.stdout.strip().splitlines()[-1])
    result["max_rss_mb"] = measured.max_rss_mb
    return result


def _cli_run(source: Path, output: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    summary_path = output.with_suffix(".summary.json")
    env = {**os.environ, "XAI_API_KEY": "local-benchmark-key"}  # any key works locally
    measured: Measured = run_measured(
        [
            sys.executable,
            "-m",
            "grok_scheduler.cli",
            "run",
            str(source),
            "--output",
            str(output),
            "--overwrite",
            "--base-url",
            base_url,
            "--concurrency",
            str(concurrency),
            "--progress",
            "off",
            "--summary-json",
            str(summary_path),
        ],
        env=env,
    )
    if measured.returncode != 0:
        raise RuntimeError(f"grok-scheduler run failed: {measured.stderr[-2000:]}")
    summary = json.loads(summary_path.read_text())
    return {
        "ok": summary["succeeded"],
        "failed": summary["failed"],
        "seconds": summary["elapsed_seconds"],
        "max_rss_mb": measured.max_rss_mb,
        "process_seconds": measured.wall_seconds,
    }


def _line(name: str, lines: int, result: dict[str, Any]) -> str:
    rate = result["ok"] / result["seconds"] if result["seconds"] else 0.0
    result["requests_per_second"] = rate
    return (
        f"  {name:<22} {rate:8.0f} req/s  {result['seconds']:7.2f} s  "
        f"ok {result['ok']}/{lines}  peak RSS {result['max_rss_mb']:6.1f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print throughput, ratio and peak RSS."""
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["client"]:
        return client_main(args_list[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="input lines (100000)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (32)")
    parser.add_argument("--skip-map", action="store_true", help="skip the Scheduler.map run")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(args_list)

    with tempfile.TemporaryDirectory(prefix="grok-bulk-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "input.jsonl"
        write_plain_prompts(source, args.lines)
        print(
            f"bulk benchmark: {args.lines} lines, concurrency {args.concurrency}, "
            f"simulator in its own process (no limits, zero latency), {os.cpu_count()} CPUs"
        )
        with SimulatorProcess(
            "--rps", "none", "--latency", "0", "--completion-tokens", "16"
        ) as sim:
            bare = _client("bare", source, sim.base_url, args.concurrency)
            print(_line("bare aiohttp loop", args.lines, bare), flush=True)
            figures: dict[str, Any] = {"lines": args.lines, "concurrency": args.concurrency}
            figures["bare"] = bare
            if not args.skip_map:
                mapped = _client("map", source, sim.base_url, args.concurrency)
                print(_line("Scheduler.map", args.lines, mapped), flush=True)
                figures["map"] = mapped
            run = _cli_run(source, workdir / "output.jsonl", sim.base_url, args.concurrency)
            print(_line("grok-scheduler run", args.lines, run), flush=True)
            figures["run"] = run
    ratio = run["requests_per_second"] / bare["requests_per_second"]
    figures["ratio_run_to_bare"] = ratio
    print(f"  run / bare throughput: {ratio:.2f} (target >= 0.60)")
    if "map" in figures:
        map_ratio = figures["map"]["requests_per_second"] / bare["requests_per_second"]
        figures["ratio_map_to_bare"] = map_ratio
        print(f"  map / bare throughput: {map_ratio:.2f}")
    print(f"  peak RSS of the run: {run['max_rss_mb']:.1f} MB (target < 150 MB)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    passed = ratio >= 0.6 and run["max_rss_mb"] < 150 and run["ok"] == args.lines
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
