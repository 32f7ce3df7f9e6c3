"""Issue 12's rate-control matrix over real sockets: makespan / ideal and the 429 share per cell.

Every cell starts a fresh simulator in its own process (``_referee.py``) and runs the jobs
through a ``Scheduler`` with default policies (default ``RetryPolicy`` and ``AdaptivePolicy``,
``max_concurrency=None``) in this process, over aiohttp on 127.0.0.1. The grid, reduced from the
issue's so that it runs in about 12 minutes on 2 cores:

* latency {0.2 s, 3 s} (uniform +-10%: a heavy tail would stretch the last answers and charge
  the tail to rate control) x evidence {none, openai-60s headers, openai-1s headers, IETF
  headers, xAI's limit-stating 429 bodies} x limit given to the client {right, 2x too high,
  not given}: 10 rps, 180 jobs, about 18 s of ideal each;
* at 1 s: the limit halves once a third of the jobs were accepted, a neighbour takes 40%,
  tokens bind (about 1,000-token prompts, 300,000 TPM), two models with limits 3x apart (12 and
  4 rps, jobs split so both have the same ideal); no headers, plain 429s, limits given right;
* 5 s calls at 20 rps, limit given, ``max_concurrency`` not given: the fraction of the limit
  reached (ideal / makespan; 100 calls must be in flight).

Ideal is what the server's real limit allows: its bucket starts full (one second of requests,
a minute of tokens), the rest goes at the refill rate the client really gets, plus one median
latency for the last answer. Targets are the issue's. The table is printed and written to
``benchmarks/results/rate_matrix-<time>.md`` (git-ignored).

    .venv/bin/python benchmarks/rate_matrix.py                    # everything
    .venv/bin/python benchmarks/rate_matrix.py --only 3s --only extra --scale 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _referee import RefereeProcess  # noqa: E402

from grok_scheduler import Scheduler  # noqa: E402

RESULTS = HERE / "results"
KEY = "xai-benchmark-key-0000000000000000"
BIG_PROMPT = "lorem ipsum dolor sit amet " * 150  # about 1,000 tokens
EVIDENCE: dict[str, dict[str, Any]] = {
    "none": {},
    "openai-60s": {"headers": "openai-60s"},
    "openai-1s": {"headers": "openai-1s"},
    "ietf": {"headers": "ietf"},
    "xai-body": {"rate_limit_body": "xai"},
}
LIMITS = ("right", "2x", "none")


@dataclass(frozen=True, slots=True)
class Cell:
    """One world: what the server enforces, what the client is told, and the target."""

    group: str
    name: str
    server: dict[str, Any]
    jobs: dict[str, int]  # model -> jobs
    client_rps: float | dict[str, float] | None
    client_tpm: float | None
    ideal: Callable[[dict[str, Any]], dict[str, float]]  # server stats -> model -> seconds
    target_ratio: float
    target_429: float
    big_prompts: bool = False
    halve_after: int | None = None
    reach: bool = False  # report the fraction of the limit reached instead of the ratio


@dataclass(slots=True)
class Result:
    """One cell's figures."""

    cell: Cell
    makespan: dict[str, float]
    ideal: dict[str, float]
    requests: int
    rate_limited: int
    failed: int
    unfinished: int
    max_in_flight: int
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The worst model's makespan / ideal."""
        return max(self.makespan[m] / self.ideal[m] for m in self.makespan)

    @property
    def share_429(self) -> float:
        return self.rate_limited / max(1, self.requests)

    @property
    def met(self) -> bool:
        if self.failed or self.unfinished:
            return False
        if self.cell.reach:
            return 1.0 / self.ratio >= self.cell.target_ratio
        return self.ratio <= self.cell.target_ratio and self.share_429 <= self.cell.target_429


def request_ideal(rps: float, jobs: int, latency: float, *, share: float = 1.0) -> float:
    """Seconds a strict ``rps`` bucket (one second of burst) needs for ``jobs`` answers."""
    return max(0.0, jobs - rps) / (rps * share) + latency


def grid(scale: float) -> list[Cell]:
    """The cells, job counts multiplied by ``scale``."""
    cells: list[Cell] = []
    rps = 10.0
    for latency in (0.2, 3.0):
        jobs = round(180 * scale)
        group = f"{latency:g}s"
        for evidence, extra in EVIDENCE.items():
            for limit in LIMITS:
                told = {"right": rps, "2x": 2 * rps, "none": None}[limit]
                ratio, share = 1.10, 0.03
                if limit == "none" and evidence == "none":
                    ratio, share = 1.20, 0.07
                if evidence == "xai-body":
                    ratio, share = 1.05, 0.02
                cells.append(
                    Cell(
                        group,
                        f"{evidence} / limit {limit}",
                        _server(rps, latency, **extra),
                        {"grok-4": jobs},
                        told,
                        None,
                        _fixed({"grok-4": request_ideal(rps, jobs, latency)}),
                        ratio,
                        share,
                    )
                )
    cells.extend(_extras(scale))
    return cells


def _extras(scale: float) -> list[Cell]:
    rps, latency = 10.0, 1.0
    jobs = round(150 * scale)
    third = jobs // 3
    halved = max(0.0, third - rps) / rps + (jobs - third) / (rps / 2) + latency
    tpm = 300_000.0

    def tokens_ideal(stats: dict[str, Any]) -> dict[str, float]:
        return {"grok-4": max(0.0, stats["tokens"] - tpm) / (tpm / 60.0) + latency}

    fast, slow = 12.0, 4.0
    fast_jobs, slow_jobs = round(240 * scale), round(80 * scale)
    two = _server(None, latency)
    two["model_limits"] = {"grok-fast": (fast, None), "grok-slow": (slow, None)}
    reach_rps, reach_latency, reach_jobs = 20.0, 5.0, round(600 * scale)
    return [
        Cell(
            "extra",
            "1s: limit halves at 1/3",
            _server(rps, latency),
            {"grok-4": jobs},
            rps,
            None,
            _fixed({"grok-4": halved}),
            1.10,
            0.03,
            halve_after=third,
        ),
        Cell(
            "extra",
            "1s: neighbour takes 40%",
            _server(rps, latency, neighbour_share=0.4),
            {"grok-4": jobs},
            rps,
            None,
            _fixed({"grok-4": request_ideal(rps, jobs, latency, share=0.6)}),
            1.10,
            0.03,
        ),
        Cell(
            "extra",
            "1s: tokens bind (300k TPM)",
            _server(None, latency, tokens_per_minute=tpm),
            {"grok-4": round(450 * scale)},
            None,
            tpm,
            tokens_ideal,
            1.10,
            0.03,
            big_prompts=True,
        ),
        Cell(
            "extra",
            "1s: two models, 12 and 4 rps",
            two,
            {"grok-fast": fast_jobs, "grok-slow": slow_jobs},
            {"grok-fast": fast, "grok-slow": slow},
            None,
            _fixed(
                {
                    "grok-fast": request_ideal(fast, fast_jobs, latency),
                    "grok-slow": request_ideal(slow, slow_jobs, latency),
                }
            ),
            1.10,
            0.03,
        ),
        Cell(
            "extra",
            "5s calls, max_concurrency=None",
            _server(reach_rps, reach_latency),
            {"grok-4": reach_jobs},
            reach_rps,
            None,
            _fixed({"grok-4": request_ideal(reach_rps, reach_jobs, reach_latency)}),
            0.90,
            1.0,
            reach=True,
        ),
    ]


def _server(rps: float | None, latency: float, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "requests_per_second": rps,
        "latency": latency,
        "latency_jitter": 0.1,
        "seed": 1,
    }
    config.update(extra)
    return config


def _fixed(ideal: dict[str, float]) -> Callable[[dict[str, Any]], dict[str, float]]:
    return lambda _stats: ideal


async def run_cell(cell: Cell) -> Result:
    """Run one cell against a fresh simulator process."""
    sim = RefereeProcess(cell.server, halve_after=cell.halve_after)
    try:
        makespan, failed, unfinished = await _drive(cell, sim.base_url)
        stats = sim.stats()
    finally:
        sim.stop()
    return Result(
        cell,
        makespan,
        cell.ideal(stats),
        stats["requests"],
        stats["rate_limited"],
        failed,
        unfinished,
        stats["max_in_flight"],
    )


async def _drive(cell: Cell, base_url: str) -> tuple[dict[str, float], int, int]:
    ideal_guess = max(cell.ideal({"tokens": 0}).values(), default=20.0)
    cap = 4 * max(ideal_guess, 20.0) + 30.0  # a run this late is broken: stop and say so
    async with Scheduler(
        api_key=KEY,
        base_url=base_url,
        requests_per_second=cell.client_rps,
        tokens_per_minute=cell.client_tpm,
    ) as scheduler:
        started = time.perf_counter()
        ends: dict[str, float] = dict.fromkeys(cell.jobs, 0.0)
        failed = 0

        async def one(model: str, i: int) -> None:
            nonlocal failed
            prompt = f"{i} {BIG_PROMPT}" if cell.big_prompts else f"benchmark job {model} {i}"
            try:
                await scheduler.submit(prompt, model=model, max_tokens=16)
            except Exception:
                failed += 1
            ends[model] = max(ends[model], time.perf_counter() - started)

        tasks = [
            asyncio.ensure_future(one(model, i))
            for model, count in cell.jobs.items()
            for i in range(count)
        ]
        _, pending = await asyncio.wait(tasks, timeout=cap)
        for task in pending:
            task.cancel()
        unfinished = len(pending)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            for model in ends:
                ends[model] = cap
            await scheduler.aclose(cancel=True)
    return ends, failed, unfinished


def row(result: Result) -> str:
    """One table row in markdown."""
    cell = result.cell
    if cell.reach:
        figure = f"reached {1 / result.ratio:.2f} of the limit (target >= {cell.target_ratio})"
    else:
        per_model = ""
        if len(result.makespan) > 1:
            parts = [f"{m} {result.makespan[m] / result.ideal[m]:.2f}" for m in result.makespan]
            per_model = " (" + ", ".join(parts) + ")"
        figure = f"<= {cell.target_ratio:.2f}, <= {100 * cell.target_429:.0f}%{per_model}"
    makespan = max(result.makespan.values())
    ideal = max(result.ideal.values())
    return (
        f"| {cell.group} | {cell.name} | {sum(cell.jobs.values())} | {makespan:.1f} | "
        f"{ideal:.1f} | {result.ratio:.2f} | {100 * result.share_429:.1f}% | {result.failed} | "
        f"{result.unfinished} | {result.max_in_flight} | {'yes' if result.met else 'NO'} | "
        f"{figure} |"
    )


HEADER = (
    "| group | cell | jobs | makespan s | ideal s | ratio | 429 % | failed | unfinished "
    "| max in flight | met | target |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="groups or name parts (repeatable)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every job count")
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    cells = [
        cell
        for cell in grid(args.scale)
        if not args.only or any(o == cell.group or o in cell.name for o in args.only)
    ]
    started = time.perf_counter()
    lines = [HEADER]
    print(HEADER, flush=True)
    for cell in cells:
        line = row(await run_cell(cell))
        lines.append(line)
        print(line, flush=True)
    took = time.perf_counter() - started
    print(f"{len(cells)} cells in {took:.0f} s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"rate_matrix-{stamp}.md"
    command = " ".join(["python", "benchmarks/rate_matrix.py", *sys.argv[1:]])
    path.write_text(
        f"# rate matrix ({stamp})\n\n`{command}`: {len(cells)} cells in {took:.0f} s\n\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
