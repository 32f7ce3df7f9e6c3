"""The command line: ``grok-scheduler run | demo | simulate``.

``run`` streams a JSONL file of prompts through the scheduler and appends one result line per
input line to the output, durably and resumably (see :mod:`grok_scheduler._batchio` for the
file formats and the resume rule). Exit codes: 0 every job succeeded, 1 some failed (the output
says which), 2 usage error, 130 interrupted.

Ctrl-C once: stop reading input, let the calls on the wire finish and record them, exit 130.
Ctrl-C twice: stop at once (the output holds whole lines only). A third one exits immediately.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import functools
import importlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import anyio
import anyio.abc

from .._core._map import OutcomeStream, Prepared, Rejected
from .._core._retry import RetryPolicy
from .._core._scheduler import DEFAULT_BASE_URL, Scheduler
from .._errors import InvalidJobError, redact
from .._transports._aiohttp import AiohttpTransport
from .._transports._drain import DrainableTransport
from ._batchio import (
    DuplicateCustomIdError,
    IdSet,
    LineParser,
    LineRef,
    OutputWriter,
    ResumeState,
    count_lines,
    failure_line,
    iter_lines,
    prepare_output,
    success_line,
)
from ._logging import LOG_LEVELS, configure_logging
from ._progress import (
    ProgressReporter,
    ProgressSnapshot,
    RateMeter,
    eta_seconds,
    format_summary,
    make_reporter,
)

__all__ = [
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "RunOptions",
    "RunReport",
    "UsageError",
    "build_parser",
    "main",
    "run_bulk",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PLACEHOLDER_KEY = "local-simulator-placeholder-key"
"""Sent to a local base URL when XAI_API_KEY is not set (the simulator accepts any key)."""

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class UsageError(Exception):
    """A problem with how the command was called: exit status 2."""


# -- options ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything ``run`` needs, validated."""

    input: str
    """A path, or ``-`` for standard input."""
    output: Path
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = "grok-4"
    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    concurrency: int = 32
    window: int | None = None
    overwrite: bool = False
    redis_url: str | None = field(default=None, repr=False)
    metrics_port: int | None = None
    priority_field: str = "priority"
    ordered: bool = False
    summary_json: Path | None = None
    max_attempts: int = 8
    timeout: float | None = None
    progress: str = "auto"
    progress_interval: float = 10.0
    log_jobs: bool = False
    """Emit per-job debug events (submitted, dispatched, completed): on with --log-level debug."""


@dataclass(frozen=True, slots=True)
class RunReport:
    """How a run ended: its exit status and the summary (also written by ``--summary-json``)."""

    exit_code: int
    summary: dict[str, Any]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def is_local_url(base_url: str) -> bool:
    """True for a base URL on this machine (127.0.0.1, localhost, ::1)."""
    return (urlparse(base_url).hostname or "") in _LOCAL_HOSTS


def resolve_api_key(base_url: str, environ: Mapping[str, str]) -> str:
    """The key from ``XAI_API_KEY``; a placeholder for a local server; else a usage error."""
    key = environ.get("XAI_API_KEY", "").strip()
    if key:
        return key
    if is_local_url(base_url):
        return PLACEHOLDER_KEY
    raise UsageError(
        "XAI_API_KEY is not set: export your xAI API key in XAI_API_KEY "
        "(or point --base-url at a local server such as `grok-scheduler simulate`)"
    )


def options_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> RunOptions:
    """Validate parsed ``run`` arguments (raises :class:`UsageError`)."""
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other")
    base_url = args.base_url
    if urlparse(base_url).scheme not in {"http", "https"} or not urlparse(base_url).hostname:
        raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
    if args.input != "-":
        source = Path(args.input)
        if not source.is_file():
            raise UsageError(f"input file not found: {args.input}")
    output = Path(args.output)
    if not output.parent.is_dir():
        raise UsageError(f"the output's directory does not exist: {output.parent}")
    if output.is_dir():
        raise UsageError(f"the output is a directory: {output}")
    if args.input != "-" and output.exists() and output.samefile(args.input):
        raise UsageError("the output must not be the input file")
    summary = Path(args.summary_json) if args.summary_json else None
    if summary is not None and not summary.parent.is_dir():
        raise UsageError(f"the --summary-json directory does not exist: {summary.parent}")
    if not args.priority_field:
        raise UsageError("--priority-field must not be empty")
    return RunOptions(
        input=args.input,
        output=output,
        api_key=resolve_api_key(base_url, environ),
        base_url=base_url,
        model=args.model,
        requests_per_second=args.rps,
        tokens_per_minute=args.tpm,
        concurrency=args.concurrency,
        window=args.window,
        overwrite=args.overwrite,
        redis_url=args.redis_url,
        metrics_port=args.metrics_port,
        priority_field=args.priority_field,
        ordered=args.ordered,
        summary_json=summary,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        progress=args.progress,
        progress_interval=args.progress_interval,
    )


# -- the run ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Counters:
    lines: int = 0
    blank: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    bad_lines: int = 0
    total: int | None = None


def _identity(item: Prepared) -> Prepared:
    return item


class _BulkRun:
    """One ``run``: input -> OutcomeStream -> output lines, with progress and interrupts."""

    __slots__ = (
        "_failure_types",
        "_interrupts",
        "_meter",
        "_reporter",
        "_scheduler",
        "_started",
        "_stream",
        "_task_group",
        "_transport",
        "_writer",
        "counters",
        "options",
        "stderr",
    )

    def __init__(self, options: RunOptions, stderr: IO[str]) -> None:
        self.options = options
        self.stderr = stderr
        self.counters = _Counters()
        self._failure_types: collections.Counter[str] = collections.Counter()
        self._interrupts = 0
        self._started = time.monotonic()
        self._meter = RateMeter()
        self._meter.update(self._started, 0)
        self._reporter: ProgressReporter = make_reporter(
            options.progress, stderr, interval=options.progress_interval
        )
        self._stream: OutcomeStream | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scheduler: Scheduler | None = None
        self._transport: DrainableTransport | None = None
        self._writer: OutputWriter | None = None

    def __repr__(self) -> str:
        return f"_BulkRun(options={self.options!r}, counters={self.counters!r})"

    @property
    def interrupted(self) -> bool:
        return self._interrupts > 0

    # -- set-up ------------------------------------------------------------------------------
    def _make_limiter(self) -> Any:
        opts = self.options
        if not opts.redis_url:
            return None
        try:
            module = importlib.import_module("grok_scheduler.distributed")
            factory = module.RedisLimiter.from_url
        except (ImportError, AttributeError) as exc:
            raise UsageError(
                "--redis-url needs the shared limiter (grok_scheduler.distributed) and the "
                f"'redis' package (pip install 'grok-scheduler[redis]'): {redact(str(exc))}"
            ) from None
        try:
            return factory(
                opts.redis_url,
                api_key=opts.api_key,
                model=opts.model,
                requests_per_second=opts.requests_per_second,
                tokens_per_minute=opts.tokens_per_minute,
            )
        except ValueError as exc:
            raise UsageError(f"--redis-url: {redact(str(exc))}") from None

    def _start_metrics(self, scheduler: Scheduler) -> None:
        port = self.options.metrics_port
        if port is None:
            return
        try:
            module = importlib.import_module("grok_scheduler._observe._metrics")
        except ImportError as exc:
            self._warn(f"metrics are not available ({exc}); continuing without --metrics-port")
            return
        try:
            module.start_metrics_server(scheduler, port)
        except OSError as exc:
            self._warn(f"could not serve metrics on port {port} ({exc}); continuing")

    def _warn(self, message: str) -> None:
        self.stderr.write(f"grok-scheduler: warning: {redact(message)}\n")
        self.stderr.flush()

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, *, handle_signals: bool) -> RunReport:
        opts = self.options
        limiter = self._make_limiter()
        state = prepare_output(opts.output, overwrite=opts.overwrite)
        if state.resumed:
            self._warn_resume(state)
        transport = DrainableTransport(
            AiohttpTransport(
                base_url=opts.base_url, api_key=opts.api_key, max_connections=opts.concurrency
            )
        )
        scheduler = Scheduler(
            base_url=opts.base_url,
            model=opts.model,
            requests_per_second=opts.requests_per_second,
            tokens_per_minute=opts.tokens_per_minute,
            max_concurrency=opts.concurrency,
            retry=RetryPolicy(max_attempts=opts.max_attempts),
            timeout=opts.timeout,
            limiter=limiter,
            transport=transport,
            log_jobs=opts.log_jobs,
        )
        self._transport, self._scheduler = transport, scheduler
        source = _open_input(opts.input)
        self._writer = OutputWriter(opts.output)
        try:
            try:
                await self._run_stream(scheduler, source, state, handle_signals=handle_signals)
            except BaseExceptionGroup as group:
                raise _first_error(group) from None
        finally:
            if source is not sys.stdin.buffer:
                source.close()
            self._writer.close()
            self._reporter.stop(self._snapshot())
        return self._report(state)

    async def _run_stream(
        self, scheduler: Scheduler, source: IO[bytes], state: ResumeState, *, handle_signals: bool
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            await scheduler.start()
            try:
                self._start_metrics(scheduler)
                stream = OutcomeStream(
                    scheduler,
                    self._jobs(source, state.done),
                    ordered=self.options.ordered,
                    window=self.options.window,
                    prepare=_identity,
                )
                self._stream = stream
                if handle_signals and threading.current_thread() is threading.main_thread():
                    await tg.start(self._watch_interrupts)
                if self.options.input != "-":
                    tg.start_soon(self._count_total)
                self._reporter.start()
                tg.start_soon(self._tick)
                async for outcome in stream:
                    self._record(outcome.metadata, outcome.result, outcome.error)
            finally:
                self._abandon()
                with anyio.CancelScope(shield=True):
                    await scheduler.aclose(cancel=True)
            tg.cancel_scope.cancel()

    def _abandon(self) -> None:
        """Leaving early (Ctrl-C twice, an error): keep what finished, drop the rest quietly."""
        stream = self._stream
        if stream is None:
            return
        stream.cancel()  # cancelled jobs leave the scheduler without a failure each
        for outcome in stream.ready_nowait():
            self._record(outcome.metadata, outcome.result, outcome.error)

    def _jobs(self, source: IO[bytes], done: IdSet) -> Iterator[Prepared]:
        parser = LineParser(priority_field=self.options.priority_field)
        seen = IdSet()
        counters = self.counters
        for number, raw in iter_lines(source):
            counters.lines += 1
            if not raw.strip():
                counters.blank += 1
                continue
            prepared = parser.parse(raw, number)
            if isinstance(prepared, Rejected):
                seen.add(prepared.metadata.custom_id)
                yield prepared
                continue
            ref: LineRef = prepared[1]["metadata"]
            if not seen.add(ref.custom_id):
                error = DuplicateCustomIdError(
                    f"line {number}: custom_id {ref.custom_id!r} is already used by an "
                    "earlier line",
                    code="duplicate_custom_id",
                )
                yield Rejected(error, ref)
                continue
            if ref.custom_id in done:
                counters.skipped += 1
                continue
            yield prepared

    def _record(self, ref: LineRef, result: Any, error: BaseException | None) -> None:
        assert self._writer is not None
        counters = self.counters
        if result is not None:
            self._writer.write(success_line(ref, result))
            counters.succeeded += 1
            return
        assert error is not None
        self._writer.write(failure_line(ref, error))
        counters.failed += 1
        self._failure_types[type(error).__name__] += 1
        if isinstance(error, InvalidJobError):
            counters.bad_lines += 1

    # -- background tasks --------------------------------------------------------------------
    async def _watch_interrupts(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                self._interrupts += 1
                if self._interrupts == 1:
                    self._first_interrupt()
                elif self._interrupts == 2:
                    self._warn("interrupted again: stopping now")
                    assert self._task_group is not None
                    self._task_group.cancel_scope.cancel()
                else:
                    os._exit(EXIT_INTERRUPTED)  # the loop is stuck: whole lines are on disk

    def _first_interrupt(self) -> None:
        assert self._stream is not None and self._transport is not None
        assert self._task_group is not None
        in_flight = self._transport.sending
        self._warn(
            f"interrupted: reading no more input, finishing {in_flight} calls in flight "
            "(Ctrl-C again to stop now)"
        )
        self._stream.close_input()
        self._transport.drain()
        self._task_group.start_soon(self._finish_in_flight)

    async def _finish_in_flight(self) -> None:
        assert self._transport is not None and self._stream is not None
        await self._transport.wait_idle()
        # Jobs queued (or waiting to retry) were never answered: they are redone on resume.
        self._stream.cancel()

    async def _count_total(self) -> None:
        try:
            total = await anyio.to_thread.run_sync(
                count_lines, self.options.input, abandon_on_cancel=True
            )
        except OSError:
            return
        self.counters.total = total

    async def _tick(self) -> None:
        assert self._writer is not None
        report_every = self._reporter.interval
        next_report = time.monotonic() + report_every
        while True:
            # Wake at least once a second for the fsync deadline, else at the next report.
            now = time.monotonic()
            await anyio.sleep(max(0.0, min(next_report - now, 1.0)))
            self._writer.sync_if_due()
            now = time.monotonic()
            if now >= next_report:
                self._reporter.update(self._snapshot())
                next_report = now + report_every

    # -- reporting ---------------------------------------------------------------------------
    def _done(self) -> int:
        c = self.counters
        return c.succeeded + c.failed + c.skipped + c.blank

    def _snapshot(self) -> ProgressSnapshot:
        c = self.counters
        now = time.monotonic()
        done = self._done()
        rate = self._meter.update(now, done)
        scheduler = self._scheduler
        stats = scheduler.statistics() if scheduler is not None else None
        limiter = stats.limiter if stats is not None else None
        return ProgressSnapshot(
            done=done,
            total=c.total,
            succeeded=c.succeeded,
            failed=c.failed,
            skipped=c.skipped,
            elapsed=now - self._started,
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

    def _warn_resume(self, state: ResumeState) -> None:
        parts = [f"resuming: {state.kept} results already in {self.options.output} are kept"]
        if state.dropped:
            parts.append(f"{state.dropped} failed or bad lines will be redone")
        if state.torn:
            parts.append("a torn last line was removed")
        self.stderr.write("grok-scheduler: " + "; ".join(parts) + "\n")

    def _report(self, state: ResumeState) -> RunReport:
        c = self.counters
        elapsed = time.monotonic() - self._started
        if self.interrupted:
            code, status = EXIT_INTERRUPTED, "interrupted"
        elif c.failed:
            code, status = EXIT_FAILURES, "finished with failures"
        else:
            code, status = EXIT_OK, "finished"
        stats = self._scheduler.statistics() if self._scheduler is not None else None
        limiter = stats.limiter if stats is not None else None
        summary: dict[str, Any] = {
            "status": status,
            "exit_code": code,
            "input": self.options.input,
            "output": str(self.options.output),
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
            "failures_by_type": dict(self._failure_types),
            "requests_per_second": limiter.requests_per_second if limiter else None,
            "tokens_per_minute": limiter.tokens_per_minute if limiter else None,
            "prompt_tokens": stats.prompt_tokens if stats else 0,
            "completion_tokens": stats.completion_tokens if stats else 0,
            "reasoning_tokens": stats.reasoning_tokens if stats else 0,
            "total_tokens": stats.total_tokens if stats else 0,
            "cost_usd": stats.cost_usd if stats else 0.0,
        }
        return RunReport(code, summary)


def _open_input(path: str) -> IO[bytes]:
    """The input as a binary stream; read lazily, line by line, from the event loop.

    Reading a local file blocks only for a page-cache copy per buffer, far below a call's cost.
    """
    return sys.stdin.buffer if path == "-" else open(path, "rb")


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (cancellations are side effects)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        return error
    return group


async def run_bulk(
    options: RunOptions, *, stderr: IO[str] | None = None, handle_signals: bool = True
) -> RunReport:
    """Run a whole input file; print the summary; write ``--summary-json`` if asked."""
    err = stderr if stderr is not None else sys.stderr
    bulk = _BulkRun(options, err)
    report = await bulk.run(handle_signals=handle_signals)
    if bulk.interrupted:
        err.write(
            "grok-scheduler: interrupted; run the same command again to resume "
            "(finished results are kept and not sent again)\n"
        )
    err.write(format_summary(report.summary) + "\n")
    err.flush()
    if options.summary_json is not None:
        text = json.dumps(report.summary, indent=2, sort_keys=True)
        options.summary_json.write_text(text + "\n", encoding="utf-8")
    return report


# -- argument parsing ------------------------------------------------------------------------
_RUN_EPILOG = """\
input lines (JSONL), either shape:
  {"custom_id": "a1", "method": "POST", "url": "/v1/chat/completions",
   "body": {"model": "grok-4", "messages": [{"role": "user", "content": "Hi"}]}}
  {"id": "a2", "prompt": "Hi", "max_tokens": 100, "priority": 1}

output lines (JSONL, batch output shape), one per input line:
  {"id": ..., "custom_id": "a1", "response": {"status_code": 200, "body": {...}}, "error": null}
  {"id": ..., "custom_id": "a2", "response": null, "error": {"type": ..., "message": ...}}

resume: when OUTPUT already has lines, successes are kept and never sent again; failed and
bad lines are removed and redone, so the finished file holds one line per input line.
--ordered orders the lines written by this run. Use --overwrite to start over.

The API key is read from XAI_API_KEY only. Exit status: 0 all succeeded, 1 some failed,
2 usage error, 130 interrupted (Ctrl-C once drains calls in flight, twice stops at once).
"""


def _add_run_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run every prompt of a JSONL file and write the results as JSONL",
        description="Run every prompt of a JSONL file through the scheduler, appending one "
        "result line per input line to OUTPUT (resumable).",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("input", metavar="INPUT.jsonl", help="input file of prompts ('-' for standard input)")
    add("--output", "-o", required=True, metavar="OUTPUT.jsonl", help="results file (appended)")
    add("--base-url", default=DEFAULT_BASE_URL, help=f"API base URL (default {DEFAULT_BASE_URL})")
    add("--model", default="grok-4", help="model for lines that name none (default grok-4)")
    add("--rps", type=_positive_float, metavar="N", help="requests per second limit")
    add("--tpm", type=_positive_float, metavar="N", help="tokens per minute limit")
    add("--concurrency", type=_positive_int, default=32, metavar="N", help="calls in flight")
    add("--window", type=_positive_int, metavar="N", help="look-ahead: jobs held at once")
    add("--resume", action="store_true", help="continue OUTPUT (the default when it has lines)")
    add("--overwrite", action="store_true", help="start over: empty OUTPUT first")
    add("--redis-url", metavar="URL", help="share the rate limits through Redis")
    add("--metrics-port", type=_port, metavar="PORT", help="serve Prometheus metrics")
    add(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="log level (logs go to stderr; JSON when not a terminal)",
    )
    add(
        "--priority-field",
        default="priority",
        metavar="NAME",
        help="line field holding the priority (lower is more urgent; default 'priority')",
    )
    add("--ordered", action="store_true", help="write this run's results in input order")
    add("--summary-json", metavar="PATH", help="also write the final summary as JSON")
    add("--max-attempts", type=_positive_int, default=8, metavar="N", help="calls per job")
    add("--timeout", type=_positive_float, metavar="SECONDS", help="timeout of each call")
    add(
        "--progress",
        choices=("auto", "live", "plain", "off"),
        default="auto",
        help="live display on a terminal, plain lines otherwise (default auto)",
    )
    add(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between plain progress lines (default 10)",
    )
    parser.set_defaults(handler=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The ``grok-scheduler`` argument parser."""
    from ..simulator._cli import add_simulate_parser, run_simulate
    from ._demo import add_demo_parser

    parser = argparse.ArgumentParser(
        prog="grok-scheduler",
        description="Get LLM work through the xAI Grok API as fast as the provider allows, "
        "and never lose it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run_parser(subparsers)
    add_demo_parser(subparsers)
    add_simulate_parser(subparsers)
    subparsers.choices["simulate"].set_defaults(handler=run_simulate)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args, os.environ)
    except UsageError as exc:
        print(f"grok-scheduler run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return execute(options, log_level=args.log_level, prefix="grok-scheduler run")


def execute(options: RunOptions, *, log_level: str, prefix: str) -> int:
    """Run ``options`` in a fresh event loop; map errors to exit statuses."""
    restore = configure_logging(log_level)
    options = dataclasses.replace(options, log_jobs=log_level == "debug")
    try:
        report = anyio.run(functools.partial(run_bulk, options), backend="asyncio")
    except UsageError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{prefix}: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURES
    finally:
        restore()
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``grok-scheduler``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):
            print("grok-scheduler: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
