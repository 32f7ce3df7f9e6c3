"""What a bulk run counted, told two ways: the progress snapshot and the final summary.

Every 429 counts as a 429, whether it was a rate limit (which slows the pool) or the service
at capacity (which does not): the capacity ones are also counted apart. Failed calls are broken
down by cause (``rate_limited``, ``server_error``, ``timeout``, ...).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK
from ._progress import ProgressSnapshot, eta_seconds

if TYPE_CHECKING:
    from .. import SchedulerStatistics
    from ._options import RunOptions
    from ._resume import ResumeState

__all__ = [
    "NOT_SENT_KEY",
    "RunCounters",
    "RunReport",
    "calls_by_cause",
    "progress_snapshot",
    "run_summary",
]

NOT_SENT_KEY = "not sent"
"""The ``failures_by_type`` entry of jobs the run never sent (it stopped first)."""


def calls_by_cause(stats: SchedulerStatistics | None) -> dict[str, int]:
    """Failed calls (retried or not) by cause; ``rate_limited`` holds every 429."""
    if stats is None:
        return {}
    return {k: v for k, v in sorted(stats.requests_by_outcome.items()) if k != "success" and v}


def _all_429s(stats: SchedulerStatistics | None) -> tuple[int, int]:
    """(every 429, the 429s for capacity among them)."""
    if stats is None:
        return 0, 0
    # A capacity 429 is a RateLimitError without the rate-limit verdict: the scheduler's
    # ``rate_limited`` leaves it out, its outcome count does not.
    every = max(stats.requests_by_outcome.get("rate_limited", 0), stats.rate_limited)
    return every, every - stats.rate_limited


@dataclass(frozen=True, slots=True)
class RunReport:
    """How a run ended: its exit status and the summary (also written by ``--summary-json``)."""

    exit_code: int
    summary: dict[str, Any]


@dataclass(slots=True)
class RunCounters:
    """This run's input lines by fate; ``total`` arrives later, from a background count."""

    lines: int = 0
    blank: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    bad_lines: int = 0
    total: int | None = None
    failure_types: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def answered(self) -> int:
        """Lines this run finished through the scheduler (what rate and ETA are made of)."""
        return self.succeeded + self.failed

    @property
    def done(self) -> int:
        """Lines finished, whichever way (blank and skipped lines count as finished)."""
        return self.succeeded + self.failed + self.skipped + self.blank


def progress_snapshot(
    c: RunCounters, stats: SchedulerStatistics | None, *, elapsed: float, rate: float | None
) -> ProgressSnapshot:
    """Where the run stands, for the progress reporter."""
    done = c.done
    limiter = stats.limiter if stats is not None else None
    every_429, capacity = _all_429s(stats)
    return ProgressSnapshot(
        done=done,
        total=c.total,
        succeeded=c.succeeded,
        failed=c.failed,
        skipped=c.skipped,
        elapsed=elapsed,
        rate=rate,
        eta=eta_seconds(done, c.total, rate),
        in_flight=stats.in_flight if stats else 0,
        queued=stats.queued if stats else 0,
        retries=stats.retries if stats else 0,
        rate_limited=every_429,
        requests_per_second=limiter.requests_per_second if limiter else None,
        tokens_per_minute=limiter.tokens_per_minute if limiter else None,
        total_tokens=stats.total_tokens if stats else 0,
        cost_usd=stats.cost_usd if stats else 0.0,
        capacity_429s=capacity,
    )


def run_summary(
    options: RunOptions,
    c: RunCounters,
    state: ResumeState,
    stats: SchedulerStatistics | None,
    *,
    interrupted: bool,
    elapsed: float,
) -> RunReport:
    """The exit status and the summary of a finished (or interrupted) run."""
    if interrupted:
        code, status = EXIT_INTERRUPTED, "interrupted"
    elif c.failed:
        code, status = EXIT_FAILURES, "finished with failures"
    else:
        code, status = EXIT_OK, "finished"
    limiter = stats.limiter if stats is not None else None
    every_429, capacity = _all_429s(stats)
    summary: dict[str, Any] = {
        "status": status,
        "exit_code": code,
        "input": options.input,
        "output": str(options.output),
        "lines": c.lines,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "bad_lines": c.bad_lines,
        "skipped": c.skipped,
        "blank_lines": c.blank,
        "resumed": state.resumed,
        "kept_from_earlier_runs": state.kept,
        "redone_from_earlier_runs": state.dropped,
        "torn_line_removed": state.torn,
        "elapsed_seconds": round(elapsed, 3),
        "lines_per_second": round((c.succeeded + c.failed) / elapsed, 2) if elapsed else 0.0,
        "requests_sent": stats.dispatched if stats else 0,
        "retries": stats.retries if stats else 0,
        "rate_limited": every_429,
        "rate_limited_capacity": capacity,
        "failed_calls_by_cause": calls_by_cause(stats),
        "failures_by_type": dict(c.failure_types),
        "requests_per_second": limiter.requests_per_second if limiter else None,
        "tokens_per_minute": limiter.tokens_per_minute if limiter else None,
        "prompt_tokens": stats.prompt_tokens if stats else 0,
        "completion_tokens": stats.completion_tokens if stats else 0,
        "reasoning_tokens": stats.reasoning_tokens if stats else 0,
        "total_tokens": stats.total_tokens if stats else 0,
        "cost_usd": stats.cost_usd if stats else 0.0,
    }
    return RunReport(code, summary)
