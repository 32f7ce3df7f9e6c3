"""What a bulk run counted, told two ways: the progress snapshot and the final summary."""

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

__all__ = ["RunCounters", "RunReport", "progress_snapshot", "run_summary"]


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
    def done(self) -> int:
        """Lines finished, whichever way (blank and skipped lines count as finished)."""
        return self.succeeded + self.failed + self.skipped + self.blank


def progress_snapshot(
    c: RunCounters, stats: SchedulerStatistics | None, *, elapsed: float, rate: float | None
) -> ProgressSnapshot:
    """Where the run stands, for the progress reporter."""
    done = c.done
    limiter = stats.limiter if stats is not None else None
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
        rate_limited=stats.rate_limited if stats else 0,
        requests_per_second=limiter.requests_per_second if limiter else None,
        tokens_per_minute=limiter.tokens_per_minute if limiter else None,
        total_tokens=stats.total_tokens if stats else 0,
        cost_usd=stats.cost_usd if stats else 0.0,
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
        "rate_limited": stats.rate_limited if stats else 0,
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
