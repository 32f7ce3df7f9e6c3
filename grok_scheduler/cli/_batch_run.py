"""``run --via batch``: the whole input through xAI's Batch API, resumable from a state file.

The same input and output shapes as an online run; each output line also says
``"via": "batch"``. Lines go up in chunks (see :mod:`grok_scheduler._batch._road`), results
are written as they become readable, and the state file ``OUTPUT.batch-state`` beside the
output records the batches and what each holds, so a killed run resumes polling and never
sends a line twice (see :mod:`grok_scheduler._batch._journal`). Ctrl-C stops waiting and
leaves the batches running on the server: the same command resumes them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import anyio

from .._batch._answer import batch_body, batch_result, unanswered
from .._batch._client import BatchClient
from .._batch._journal import Journal
from .._batch._road import BatchRoad
from .._core._map import Rejected
from .._errors import InvalidJobError
from .._models import Endpoint, Result
from .._transports._rest import AiohttpRest, Rest
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK
from ._lines import LineParser, LineRef, iter_lines, request_hash
from ._options import RunOptions
from ._output import OutputWriter, failure_line, success_line
from ._resume import ResumeState, prepare_output
from ._summary import RunReport

__all__ = [
    "BatchLines",
    "batch_state_path",
    "format_batch_summary",
    "mark_via",
    "run_batch",
    "to_batch_body",
]


def batch_state_path(output: Path) -> Path:
    """The state file beside ``output``."""
    return output.with_name(output.name + ".batch-state")


def mark_via(line: bytes, road: str = "batch") -> bytes:
    """An output line with ``"via": road`` added (lines end ``}\\n``)."""
    return line[:-2] + f',"via":"{road}"}}\n'.encode()


def to_batch_body(prompt: Any, options: Mapping[str, Any], default_model: str) -> dict[str, Any]:
    """The chat body a parsed line becomes, as the online road would send it."""
    return batch_body(prompt, options, default_model)


class BatchLines:
    """The input's lines that still need an answer: refs by custom_id, bad lines apart."""

    __slots__ = ("bad", "blank", "bodies", "jobs", "lines", "refs", "skipped")

    def __init__(self) -> None:
        self.refs: dict[str, LineRef] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, tuple[Any, dict[str, Any]]] = {}
        """The parsed ``(prompt, submit options)`` of each line, for the online road."""
        self.bad: list[Rejected] = []
        self.lines = self.blank = self.skipped = 0

    def __repr__(self) -> str:
        return f"BatchLines(todo={len(self.refs)}, bad={len(self.bad)})"

    @classmethod
    def read(
        cls, source: IO[bytes], state: ResumeState, *, priority_field: str, default_model: str
    ) -> BatchLines:
        found = cls()
        parser = LineParser(priority_field=priority_field)
        for number, raw in iter_lines(source):
            found.lines += 1
            if not raw.strip():
                found.blank += 1
                continue
            fingerprint = request_hash(raw)
            prepared = parser.parse(raw, number, fingerprint=fingerprint)
            if isinstance(prepared, Rejected):
                found.bad.append(prepared)
                continue
            prompt, options = prepared
            ref: LineRef = options["metadata"]
            if state.status(ref.custom_id, fingerprint) != "todo":
                found.skipped += 1
                continue
            if ref.custom_id in found.refs:
                error = InvalidJobError(f"line {number}: custom_id {ref.custom_id!r} is reused")
                found.bad.append(Rejected(error, ref))
                continue
            if options.get("endpoint") is Endpoint.RESPONSES:
                error = InvalidJobError(f"line {number}: the Batch API takes chat completions")
                found.bad.append(Rejected(error, ref))
                continue
            found.refs[ref.custom_id] = ref
            found.bodies[ref.custom_id] = to_batch_body(prompt, options, default_model)
            found.jobs[ref.custom_id] = (prompt, options)
        return found

    def pairs(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        return iter(self.bodies.items())


async def run_batch(
    options: RunOptions,
    stderr: IO[str] | None = None,
    *,
    rest: Rest | None = None,
    poll_min: float = 5.0,
    poll_max: float = 60.0,
    chunk_bytes: int | None = None,
) -> RunReport:
    """Run ``options.input`` through the Batch API into ``options.output``."""
    err = stderr if stderr is not None else sys.stderr
    started = time.monotonic()
    state_path = batch_state_path(options.output)
    if options.overwrite:
        state_path.unlink(missing_ok=True)
    state = prepare_output(options.output, overwrite=options.overwrite)
    lines = await anyio.to_thread.run_sync(_read_lines, options, state)
    rest = (
        rest
        if rest is not None
        else AiohttpRest(base_url=options.base_url, api_key=options.api_key)
    )
    journal = Journal(state_path)
    road = BatchRoad(BatchClient(rest), journal, poll_min=poll_min, poll_max=poll_max)
    if chunk_bytes is not None:
        road.chunk_bytes = chunk_bytes
    writer = OutputWriter(options.output)
    counts = {"succeeded": 0, "failed": 0}
    cost = {"batch_usd": 0.0}
    interrupted = False
    last_report = time.monotonic()
    try:
        for rejected in lines.bad:
            writer.write(mark_via(failure_line(rejected.metadata, rejected.error)))
            counts["failed"] += 1
        await road.resume()
        await road.submit(lines.pairs())
        async for item in road.results():
            ref = lines.refs.pop(item.custom_id, None)
            if ref is None:
                continue  # answered in an earlier run, or not a line of this input
            outcome = batch_result(item, ref)
            if isinstance(outcome, Result):
                writer.write(mark_via(success_line(ref, outcome)))
                counts["succeeded"] += 1
                cost["batch_usd"] += outcome.usage.cost_usd or 0.0
            else:
                writer.write(mark_via(failure_line(ref, outcome)))
                counts["failed"] += 1
            writer.sync_if_due()
            now = time.monotonic()
            if options.progress != "off" and now - last_report >= options.progress_interval:
                last_report = now
                _progress(err, road)
        for ref in lines.refs.values():  # cancelled on the server, or never answered
            writer.write(mark_via(failure_line(ref, unanswered())))
            counts["failed"] += 1
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
        journal.close()
        await rest.aclose()
    progress = road.progress()
    elapsed = time.monotonic() - started
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILURES if counts["failed"] else EXIT_OK
    summary: dict[str, Any] = {
        "status": "interrupted" if interrupted else "finished",
        "exit_code": code,
        "via": "batch",
        "input": options.input,
        "output": str(options.output),
        "state_file": str(state_path),
        "lines": lines.lines,
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "skipped": lines.skipped,
        "kept_from_earlier_runs": state.kept,
        "batches": journal.batches,
        "submitted": progress.submitted,
        "elapsed_seconds": round(elapsed, 3),
        "cost_usd": {
            "batch": round(cost["batch_usd"], 6),
            "online": 0.0,
            # What the same work would have cost online (xAI: batch is 50% off).
            "same_work_online": round(cost["batch_usd"] * 2, 6),
        },
    }
    return RunReport(code, summary)


def _read_lines(options: RunOptions, state: ResumeState) -> BatchLines:
    with open(options.input, "rb") as source:
        return BatchLines.read(
            source, state, priority_field=options.priority_field, default_model=options.model
        )


def _progress(err: IO[str], road: BatchRoad) -> None:
    p = road.progress()
    err.write(
        f"grok-scheduler: batch: {p.submitted} submitted, {p.pending} pending, "
        f"{p.succeeded} done, {p.failed} failed\n"
    )
    err.flush()


def format_batch_summary(summary: Mapping[str, Any]) -> str:
    """The human summary of a batch run."""
    c = summary["cost_usd"]
    return (
        f"grok-scheduler: {summary['status']} via batch in {summary['elapsed_seconds']} s\n"
        f"  lines       {summary['lines']} read, {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed, {summary['skipped']} skipped\n"
        f"  batches     {len(summary['batches'])} ({summary['submitted']} lines submitted)\n"
        f"  cost        batch ${c['batch']:.4f}, online ${c['online']:.4f} "
        f"(the same work online: ${c['same_work_online']:.4f})"
    )
