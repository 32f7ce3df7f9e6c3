"""``run --via auto --deadline DURATION``: online at the learned limit, the overflow by batch.

The lines go online through the scheduler; every second the plan (see
:mod:`grok_scheduler._batch._roads`) sends the lines that cannot finish before the deadline
to xAI's Batch API. Each output line says which road answered it (``"via"``). The state file
``OUTPUT.batch-state`` records what went to the batch road, so a killed run resumes: lines in
the output are kept, lines in the state file are polled (never sent again, on either road),
and the rest are planned again against a deadline counted from the resumed start. Ctrl-C
leaves the batches running on the server; the same command picks them up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

import anyio

from .._batch._client import BatchClient
from .._batch._journal import Journal
from .._batch._plan import BATCH_DELAY_PRIOR
from .._batch._road import BatchRoad
from .._batch._roads import Line, RoadOutcome, Roads
from .._clock import LoopClock
from .._core._retry import RetryPolicy
from .._core._scheduler import Scheduler
from .._models import Priority
from .._transports._aiohttp import AiohttpTransport
from .._transports._rest import AiohttpRest, Rest
from ._batch_run import BatchLines, batch_state_path, mark_via
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK
from ._options import RunOptions
from ._output import OutputWriter, failure_line, success_line
from ._resume import ResumeState, prepare_output
from ._setup import make_limiter
from ._summary import RunReport

__all__ = ["format_auto_summary", "run_auto"]

_CONNECTION_CAP = 1024


def _lines(found: BatchLines) -> Iterator[Line]:
    for custom_id, (prompt, options) in found.jobs.items():
        submit = {k: v for k, v in options.items() if k not in ("metadata", "priority")}
        yield Line(
            custom_id,
            int(options.get("priority", Priority.NORMAL)),
            prompt,
            submit,
            found.bodies[custom_id],
            metadata=found.refs[custom_id],
        )


def _scheduler(options: RunOptions) -> Scheduler:
    return Scheduler(
        base_url=options.base_url,
        model=options.model,
        requests_per_second=options.requests_per_second,
        tokens_per_minute=options.tokens_per_minute,
        max_concurrency=options.concurrency,
        retry=RetryPolicy(max_attempts=options.max_attempts),
        timeout=options.timeout,
        limiter=make_limiter(options),
        transport=AiohttpTransport(
            base_url=options.base_url,
            api_key=options.api_key,
            max_connections=options.concurrency or _CONNECTION_CAP,
        ),
        log_jobs=options.log_jobs,
    )


async def run_auto(
    options: RunOptions,
    stderr: IO[str] | None = None,
    *,
    rest: Rest | None = None,
    poll_min: float = 5.0,
    poll_max: float = 60.0,
    replan_every: float = 1.0,
) -> RunReport:
    """Run ``options.input`` on both roads into ``options.output`` by ``options.deadline``."""
    assert options.deadline is not None
    err = stderr if stderr is not None else sys.stderr
    started = time.monotonic()
    state_path = batch_state_path(options.output)
    if options.overwrite:
        state_path.unlink(missing_ok=True)
    state = prepare_output(options.output, overwrite=options.overwrite)
    found = await anyio.to_thread.run_sync(_read_lines, options, state)
    rest = rest or AiohttpRest(base_url=options.base_url, api_key=options.api_key)
    journal = Journal(state_path)
    road = BatchRoad(BatchClient(rest), journal, poll_min=poll_min, poll_max=poll_max)
    writer = OutputWriter(options.output)
    counts = {"succeeded": 0, "failed": 0, "online": 0, "batch": 0}
    clock = LoopClock()
    scheduler = _scheduler(options)
    roads = Roads(
        scheduler,
        road,
        clock=clock,
        via="auto",
        deadline=clock.now() + options.deadline,
        window=options.window or 64,
        replan_every=replan_every,
        batch_delay=BATCH_DELAY_PRIOR if options.batch_delay is None else options.batch_delay,
    )

    def emit(outcome: RoadOutcome) -> None:
        ref = outcome.metadata
        counts[outcome.via] += 1
        if outcome.result is not None:
            writer.write(mark_via(success_line(ref, outcome.result), outcome.via))
            counts["succeeded"] += 1
        else:
            assert outcome.error is not None
            writer.write(mark_via(failure_line(ref, outcome.error), outcome.via))
            counts["failed"] += 1
        writer.sync_if_due()

    interrupted = False
    try:
        for rejected in found.bad:
            writer.write(mark_via(failure_line(rejected.metadata, rejected.error), "online"))
            counts["failed"] += 1
        await road.resume()
        roads.assign(_lines(found))
        async with scheduler:
            await roads.run(emit)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
        journal.close()
        await rest.aclose()
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILURES if counts["failed"] else EXIT_OK
    costs = roads.costs
    seen = roads.longest_batch_delay
    summary: dict[str, Any] = {
        "status": "interrupted" if interrupted else "finished",
        "exit_code": code,
        "via": "auto",
        "input": options.input,
        "output": str(options.output),
        "state_file": str(state_path),
        "deadline_seconds": options.deadline,
        "lines": found.lines,
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "skipped": found.skipped,
        "kept_from_earlier_runs": state.kept,
        "online_lines": counts["online"],
        "batch_lines": counts["batch"],
        "batches": journal.batches,
        "submitted": road.progress().submitted,
        "elapsed_seconds": round(time.monotonic() - started, 3),
        "deadline_met": not interrupted and not any(roads.late.values()),
        "late_lines": dict(roads.late),
        "deadline_at_risk": roads.last_risk,
        "batch_delay_seen_seconds": None if seen is None else round(seen, 1),
        "cost_usd": {
            "online": round(costs.online_usd, 9),
            "batch": round(costs.batch_usd, 9),
            "same_work_online": round(costs.same_work_online_usd, 9),
        },
    }
    err.flush()
    return RunReport(code, summary)


def _read_lines(options: RunOptions, state: ResumeState) -> BatchLines:
    with open(options.input, "rb") as source:
        return BatchLines.read(
            source, state, priority_field=options.priority_field, default_model=options.model
        )


def format_auto_summary(summary: Mapping[str, Any]) -> str:
    """The human summary of an auto run: lines and cost per road."""
    c = summary["cost_usd"]
    late = summary["late_lines"]
    met = "met" if summary["deadline_met"] else "missed"
    if late["online"] or late["batch"]:
        met += f": {late['online']} online and {late['batch']} batch lines answered late"
    risk = summary["deadline_at_risk"]
    return (
        f"grok-scheduler: {summary['status']} via auto in {summary['elapsed_seconds']} s "
        f"(deadline {summary['deadline_seconds']} s, {met})\n"
        + (f"  at risk     {risk}\n" if risk else "")
        + f"  lines       {summary['lines']} read, {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed, {summary['skipped']} skipped\n"
        f"  roads       {summary['online_lines']} online, {summary['batch_lines']} batch "
        f"({len(summary['batches'])} batches)\n"
        f"  cost        online ${c['online']:.4f}, batch ${c['batch']:.4f} "
        f"(the same work online: ${c['same_work_online']:.4f})"
    )
