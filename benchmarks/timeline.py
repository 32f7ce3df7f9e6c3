"""What the run's time series costs: time per job on the hot path, memory for a 24-hour run.

Targets (issue 16): under 1 µs per job, under 1 MB for a 24-hour run. A job on the hot path is
one ``sent`` and one ``accepted`` (a failed attempt adds one or two more calls, rarely).

A job costs a few hundred ns while its second is open; closing a second (storing the row and
folding it into the coarser levels) costs a few µs once per second per model. Per job that is
under 1 µs from about ten jobs a second up; at one job a second it is about 3 µs per job, a
few µs of CPU per second of the run.

    python benchmarks/timeline.py
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from grok_scheduler import RateLimitError
from grok_scheduler._observe._timeline import Timeline
from grok_scheduler._wire._classify import Verdict

DAY = 86_400
_429 = Verdict(RateLimitError("slow down", status_code=429), True, None, "requests", True)


def _probe(model: str) -> tuple[int, float | None, float | None]:
    return 8, 40.0, 2_000_000.0


def per_job_seconds(jobs_per_second: int, seconds: int) -> float:
    """Seconds per job (sent + accepted) at a steady rate, rows closing as time passes."""
    timeline = Timeline(probe=_probe)
    step = 1.0 / jobs_per_second
    sent, accepted = timeline.sent, timeline.accepted
    gc.disable()
    try:
        started = time.perf_counter()
        now = 0.0
        for _ in range(jobs_per_second * seconds):
            sent("grok-4", now, 8)
            accepted("grok-4", now + 0.5, 900, 0.8)
            now += step
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    return elapsed / (jobs_per_second * seconds)


def day_bytes(models: int) -> tuple[int, int]:
    """(bytes traced, bytes of stored rows) after 24 hours with a job every second per model."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    timeline = Timeline(probe=_probe)
    names = [f"grok-{i}" for i in range(models)]
    for second in range(DAY):
        for name in names:
            timeline.sent(name, second + 0.1, 8)
            timeline.accepted(name, second + 0.6, 900, 0.5)
            if second % 60 == 0:
                timeline.failed_attempt(name, second + 0.7, _429)
                timeline.retried(name, second + 0.7, "rate_limited")
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return traced, timeline.nbytes()


def main() -> int:
    print("time per job (sent + accepted):")
    worst = 0.0
    for rate, seconds in ((1, 200_000), (3, 60_000), (10, 20_000), (50, 4_000), (1_000, 200)):
        cost = per_job_seconds(rate, seconds)
        if rate >= 10:
            worst = max(worst, cost)
        print(f"  {rate:5d} jobs/s: {cost * 1e9:6.0f} ns per job")
    print("memory for a 24-hour run:")
    biggest = 0
    for models in (1, 2):
        traced, stored = day_bytes(models)
        biggest = max(biggest, traced // models)
        print(f"  {models} model(s): {traced / 1e6:5.2f} MB traced, {stored / 1e6:5.2f} MB of rows")
    ok = worst < 1e-6 and biggest < 1_000_000
    verdict = "met" if ok else "NOT met"
    print(f"targets (< 1 µs per job from 10 jobs/s, < 1 MB per model-day): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
