"""How close to the server's limit does the scheduler run? Makespan against the ideal, and 429s.

Each scenario starts the built-in xAI simulator on 127.0.0.1 with a strict limit, runs N jobs
through a Scheduler over real sockets and prints makespan / ideal (1.00 = exactly at the limit)
and the share of requests answered 429.

    python benchmarks/utilization.py                 # every scenario
    python benchmarks/utilization.py --only correct --jobs 2000 --rps 50
    python benchmarks/utilization.py --pictures out/   # also out/<scenario>.html (plotly)

Ideal: jobs / rps for request-bound runs (tokens / tpm for the token-bound one), computed for the
limit the server really enforced (after a drop, or net of a neighbour's share).

The OpenAI-header scenario uses the simulator's ``openai-60s`` mode: a per-minute ``limit`` with
``remaining`` and ``reset`` taken from the same bucket, as OpenAI sends them (the old ``openai``
mode paired a per-minute limit with a one-second bucket's remaining and reset, which no real
server does).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from grok_scheduler import RetryPolicy, Scheduler
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-benchmark-key-0000000000000000"
# Where each scenario's picture of the run goes (--pictures); None: no pictures.
PICTURES: Path | None = None


@dataclass
class Outcome:
    name: str
    jobs: int
    makespan: float
    ideal: float
    requests: int
    rate_limited: int
    failed: int
    target: str

    @property
    def ratio(self) -> float:
        return self.makespan / self.ideal

    @property
    def share_429(self) -> float:
        return self.rate_limited / max(1, self.requests)


async def _run(
    sim: Simulator,
    jobs: int,
    *,
    rps: float | None,
    tpm: float | None = None,
    prompt: Callable[[int], str] = lambda i: f"benchmark job {i}",
    max_tokens: int | None = 16,
    during: Callable[[int], Awaitable[None] | None] | None = None,
    concurrency: int = 64,
    picture: Path | None = None,
) -> tuple[float, int]:
    async with Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        requests_per_second=rps,
        tokens_per_minute=tpm,
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=20),
    ) as scheduler:
        started = time.perf_counter()
        futures = [scheduler.submit_nowait(prompt(i), max_tokens=max_tokens) for i in range(jobs)]
        failed = 0
        for done, future in enumerate(asyncio.as_completed(futures), start=1):
            try:
                await future
            except Exception:
                failed += 1
            if during is not None:
                maybe = during(done)
                if maybe is not None:
                    await maybe
        makespan = time.perf_counter() - started
        if picture is not None:
            scheduler.write_report(picture)
        return makespan, failed


async def scenario(
    name: str,
    target: str,
    jobs: int,
    config: SimulatorConfig,
    ideal: float | Callable[[int], float],
    **run_options: object,
) -> Outcome:
    async with Simulator(config) as sim:
        during_factory = run_options.pop("during_factory", None)
        if callable(during_factory):
            run_options["during"] = during_factory(sim)
        if PICTURES is not None:
            run_options["picture"] = PICTURES / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".html")
        makespan, failed = await _run(sim, jobs, **run_options)  # type: ignore[arg-type]
        stats = sim.stats
        best = ideal(stats.tokens) if callable(ideal) else ideal
        return Outcome(
            name, jobs, makespan, best, stats.requests, stats.rate_limited, failed, target
        )


def _server(rps: float | None, **extra: object) -> SimulatorConfig:
    return SimulatorConfig(
        requests_per_second=rps,
        latency=0.05,
        latency_jitter=0.5,
        seed=1,
        **extra,  # type: ignore[arg-type]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rps", type=float, default=40.0)
    parser.add_argument("--only", action="append", help="run only these scenarios (repeatable)")
    parser.add_argument(
        "--pictures", type=Path, metavar="DIR", help="write each run's HTML report here (plotly)"
    )
    args = parser.parse_args()
    global PICTURES
    PICTURES = args.pictures
    if PICTURES is not None:
        PICTURES.mkdir(parents=True, exist_ok=True)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    n, rps = args.jobs, args.rps

    def halve_at_third(sim: Simulator) -> Callable[[int], None]:
        def during(done: int) -> None:
            if done == n // 3:
                sim.set_limits(requests_per_second=rps / 2)

        return during

    big_prompt = "lorem ipsum dolor sit amet " * 150  # about 1,000 tokens
    tpm = 300_000.0
    token_jobs = 600  # about two minutes' worth of tokens
    scenarios: dict[str, Callable[[], Awaitable[Outcome]]] = {
        "correct": lambda: scenario(
            "correct limits, no headers", "<=1.05, 0 429s", n, _server(rps), n / rps, rps=rps
        ),
        "2x-openai": lambda: scenario(
            "told 2x, openai-60s headers",
            "<=1.10, <3% 429s",
            n,
            _server(rps, headers="openai-60s"),
            n / rps,
            rps=2 * rps,
        ),
        "2x-none": lambda: scenario(
            "told 2x, no headers", "<=1.15, <5% 429s", n, _server(rps), n / rps, rps=2 * rps
        ),
        "unknown": lambda: scenario(
            "no limits given, no headers", "<=1.20", n, _server(rps), n / rps, rps=None
        ),
        "halved": lambda: scenario(
            "server halves at 1/3",
            "<=1.15",
            n,
            _server(rps),
            (n / 3) / rps + (2 * n / 3) / (rps / 2),
            rps=rps,
            during_factory=halve_at_third,
        ),
        "neighbour": lambda: scenario(
            "neighbour takes 40%",
            "<=1/0.85=1.18, <5% 429s",
            n,
            _server(rps, neighbour_share=0.4),
            n / (0.6 * rps),
            rps=rps,
        ),
        "tokens": lambda: scenario(
            "token-bound (tpm binds)",
            "<=1.10",
            token_jobs,
            SimulatorConfig(
                requests_per_second=None,
                tokens_per_minute=tpm,
                latency=0.05,
                completion_tokens=16,
                seed=1,
            ),
            # The server's bucket starts full (one minute of tokens): ideal counts that burst.
            lambda tokens: max(0.0, (tokens - tpm) / (tpm / 60.0)),
            rps=None,
            tpm=tpm,
            prompt=lambda i: f"{i} {big_prompt}",
            max_tokens=16,
        ),
    }
    chosen = args.only or list(scenarios)
    print(
        f"{'scenario':32} {'jobs':>6} {'makespan':>9} {'ideal':>8} {'ratio':>6} "
        f"{'429s':>6} {'429%':>6} {'failed':>6}  target"
    )
    for key in chosen:
        outcome = await scenarios[key]()
        print(
            f"{outcome.name:32} {outcome.jobs:6d} {outcome.makespan:8.2f}s {outcome.ideal:7.2f}s "
            f"{outcome.ratio:6.3f} {outcome.rate_limited:6d} {100 * outcome.share_429:5.1f}% "
            f"{outcome.failed:6d}  {outcome.target}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
