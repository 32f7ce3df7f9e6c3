"""The ``run`` subcommand: one bulk run, input lines -> OutcomeStream -> durable result lines.

``run`` streams a JSONL file of prompts through the scheduler and appends one result line per
input line to the output, durably and resumably (see :mod:`._lines`, :mod:`._output` and
:mod:`._resume` for the file formats and the resume rule). Exit codes: 0 every job succeeded,
1 some failed (the output says which), 2 usage error, 130 interrupted.

Ctrl-C once: stop reading input, let the calls on the wire finish and record them, exit 130.
Ctrl-C twice: stop at once (the output holds whole lines only). A third one exits immediately.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import anyio
import anyio.abc

from .._core._map import OutcomeStream, Prepared, Rejected
from .._core._retry import RetryPolicy
from .._core._scheduler import Scheduler
from .._errors import InvalidJobError, redact
from .._transports._aiohttp import AiohttpTransport
from .._transports._drain import DrainableTransport
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from ._lines import DuplicateCustomIdError, IdSet, LineParser, LineRef, count_lines, iter_lines
from ._logging import configure_logging
from ._options import RunOptions, build_run_parser, options_from_args
from ._output import OutputWriter, failure_line, success_line
from ._progress import ProgressReporter, ProgressSnapshot, RateMeter, format_summary, make_reporter
from ._resume import ResumeState, prepare_output
from ._summary import RunCounters, RunReport, progress_snapshot, run_summary

__all__ = ["RunReport", "add_run_parser", "execute", "run_bulk"]


def _identity(item: Prepared) -> Prepared:
    return item


class _BulkRun:
    """One ``run``: input -> OutcomeStream -> output lines, with progress and interrupts."""

    __slots__ = (
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
        self.counters = RunCounters()
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
        counters.failure_types[type(error).__name__] += 1
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
    def _snapshot(self) -> ProgressSnapshot:
        now = time.monotonic()
        rate = self._meter.update(now, self.counters.done)
        stats = self._scheduler.statistics() if self._scheduler is not None else None
        return progress_snapshot(self.counters, stats, elapsed=now - self._started, rate=rate)

    def _warn_resume(self, state: ResumeState) -> None:
        parts = [f"resuming: {state.kept} results already in {self.options.output} are kept"]
        if state.dropped:
            parts.append(f"{state.dropped} failed or bad lines will be redone")
        if state.torn:
            parts.append("a torn last line was removed")
        self.stderr.write("grok-scheduler: " + "; ".join(parts) + "\n")

    def _report(self, state: ResumeState) -> RunReport:
        elapsed = time.monotonic() - self._started
        stats = self._scheduler.statistics() if self._scheduler is not None else None
        return run_summary(
            self.options,
            self.counters,
            state,
            stats,
            interrupted=self.interrupted,
            elapsed=elapsed,
        )


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


def add_run_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``run`` sub-command."""
    build_run_parser(subparsers).set_defaults(handler=_cmd_run)


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
