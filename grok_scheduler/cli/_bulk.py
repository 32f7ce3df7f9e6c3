"""One bulk run: input lines -> OutcomeStream -> durable result lines (the engine of ``run``).

``run`` streams a JSONL file of prompts through the scheduler and appends one result line per
input line to the output, durably and resumably (see :mod:`._lines`, :mod:`._output` and
:mod:`._resume` for the file formats and the resume rule); :mod:`._run` turns how it ended
into an exit status.

Ctrl-C once: stop reading input, let the calls on the wire finish and record them, exit 130.
Ctrl-C twice: stop at once (the output holds whole lines only). A third one exits immediately.

An error that would fail every job (a refused key, no credits) is told once on stderr with the
server's reason; the jobs never sent are recorded as such (see :mod:`._output`).
"""

from __future__ import annotations

import functools
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
from .._errors import APIError, InvalidJobError, redact
from .._observe._report import write_report
from .._transports._aiohttp import AiohttpTransport
from .._transports._drain import DrainableTransport, drainable
from ._exit import EXIT_INTERRUPTED, UsageError
from ._heap import tuned_collector
from ._lines import (
    DuplicateCustomIdError,
    IdSet,
    LineParser,
    LineRef,
    count_lines,
    iter_lines,
    request_hash,
)
from ._options import RunOptions
from ._output import OutputWriter, failure_line, never_sent, success_line
from ._progress import (
    ProgressReporter,
    ProgressSnapshot,
    RateMeter,
    make_reporter,
    plural,
)
from ._resume import ResumeState, changed_input_error, first_changed_line, prepare_output
from ._setup import make_limiter, start_metrics
from ._summary import NOT_SENT_KEY, RunCounters, RunReport, progress_snapshot, run_summary

# Connections when --concurrency is not given (the scheduler's own automatic cap).
_CONNECTION_CAP = 1024

__all__ = ["BulkRun"]

# Seconds between rewrites of --report during a run (a browser showing it reloads as often).
_REPORT_EVERY = 5.0


def _identity(item: Prepared) -> Prepared:
    return item


class BulkRun:
    """One ``run``: input -> OutcomeStream -> output lines, with progress and interrupts."""

    __slots__ = (
        "_changed",
        "_fatal_told",
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
        self._changed: UsageError | None = None
        self._fatal_told = False

    def __repr__(self) -> str:
        return f"BulkRun(options={self.options!r}, counters={self.counters!r})"

    @property
    def interrupted(self) -> bool:
        return self._interrupts > 0

    # -- set-up ------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        self._say(f"warning: {message}")

    def _say(self, message: str) -> None:
        # Through the reporter: a live display must show it above itself, not draw over it.
        self._reporter.notice(f"grok-scheduler: {redact(message)}")

    async def _refuse_changed_input(self, state: ResumeState) -> None:
        opts = self.options
        if opts.input == "-" or not len(state.hashed):
            return
        found = await anyio.to_thread.run_sync(
            functools.partial(
                first_changed_line, opts.input, state, priority_field=opts.priority_field
            )
        )
        if found is not None:
            raise changed_input_error(opts.input, opts.output, *found)

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, *, handle_signals: bool) -> RunReport:
        opts = self.options
        limiter = make_limiter(opts)
        state = prepare_output(opts.output, overwrite=opts.overwrite)
        await self._refuse_changed_input(state)
        if state.resumed:
            self._warn_resume(state)
        # Drainable for Ctrl-C; streams like what it wraps, so hung calls are cut by silence.
        transport = drainable(
            AiohttpTransport(
                base_url=opts.base_url,
                api_key=opts.api_key,
                max_connections=opts.concurrency or _CONNECTION_CAP,
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
        self._writer = OutputWriter(opts.output, ordered=opts.ordered)
        try:
            try:
                with tuned_collector():
                    await self._run_stream(scheduler, source, state, handle_signals=handle_signals)
            except BaseExceptionGroup as group:
                raise _first_error(group) from None
        finally:
            if source is not sys.stdin.buffer:
                source.close()
            self._writer.close()
            self._writer.put_in_order()
            self._reporter.stop(self._snapshot())
        await self._write_report(live=False)
        if self._changed is not None:
            raise self._changed
        if self.counters.lines == self.counters.blank and not self.interrupted:
            self._say(f"no jobs in {opts.input}")
        return self._report(state)

    async def _run_stream(
        self, scheduler: Scheduler, source: IO[bytes], state: ResumeState, *, handle_signals: bool
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            await scheduler.start()
            try:
                start_metrics(scheduler, self.options.metrics_port, self._warn)
                # Never ordered here: an answer held back for order is lost by a kill. The
                # writer orders the lines at the end instead.
                stream = OutcomeStream(
                    scheduler,
                    self._jobs(source, state),
                    ordered=False,
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

    def _jobs(self, source: IO[bytes], state: ResumeState) -> Iterator[Prepared]:
        parser = LineParser(priority_field=self.options.priority_field)
        seen = IdSet()
        counters = self.counters
        for number, raw in iter_lines(source):
            counters.lines += 1
            if not raw.strip():
                counters.blank += 1
                continue
            fingerprint = request_hash(raw)
            prepared = parser.parse(raw, number, fingerprint=fingerprint)
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
            status = state.status(ref.custom_id, fingerprint)
            if status == "changed":  # only standard input gets here: files are checked first
                self._changed = changed_input_error(
                    self.options.input, self.options.output, number, ref.custom_id
                )
                self._warn(f"{self._changed}; finishing the calls in flight")
                return
            if status == "done":
                counters.skipped += 1
                continue
            yield prepared

    def _record(self, ref: LineRef, result: Any, error: BaseException | None) -> None:
        assert self._writer is not None
        counters = self.counters
        if result is not None:
            self._writer.write(success_line(ref, result), key=ref.line)
            counters.succeeded += 1
            return
        assert error is not None
        self._writer.write(failure_line(ref, error), key=ref.line)
        counters.failed += 1
        counters.failure_types[NOT_SENT_KEY if never_sent(error) else type(error).__name__] += 1
        if isinstance(error, InvalidJobError):
            counters.bad_lines += 1
        if isinstance(error, APIError) and error.fails_every_job:
            self._tell_fatal(error)

    def _tell_fatal(self, error: APIError) -> None:
        """Say once why the run stopped, with the server's reason (not once per job)."""
        if self._fatal_told:
            return
        self._fatal_told = True
        reason = error.message.partition("fails every job: ")[2] or error.message
        status = f" (status {error.status_code})" if error.status_code is not None else ""
        self._say(
            f"error: the API refused a call with {type(error).__name__}{status}: {reason}\n"
            "grok-scheduler: every job would fail the same way, so the run stops; jobs not "
            "yet sent are recorded as not sent and are redone when you run again"
        )

    # -- background tasks --------------------------------------------------------------------
    async def _watch_interrupts(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                self._interrupt()

    def _interrupt(self) -> None:
        """One Ctrl-C: the first drains, the second stops at once, a third exits."""
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
        assert self._task_group is not None and self._scheduler is not None
        in_flight = self._transport.sending
        self._warn(
            f"interrupted: reading no more input, finishing {plural(in_flight, 'call')} in "
            "flight (Ctrl-C again to stop now)"
        )
        self._stream.close_input()
        self._scheduler.pause()  # queued jobs and retries wait at the gate: never sent, never cut
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
        next_picture = time.monotonic() + _REPORT_EVERY
        while True:
            # Wake at least once a second for the fsync deadline, else at the next report.
            now = time.monotonic()
            await anyio.sleep(max(0.0, min(next_report - now, 1.0)))
            self._writer.sync_if_due()
            now = time.monotonic()
            if now >= next_report:
                self._reporter.update(self._snapshot())
                next_report = now + report_every
            if self.options.report is not None and now >= next_picture:
                await self._write_report(live=True)
                next_picture = time.monotonic() + _REPORT_EVERY

    # -- reporting ---------------------------------------------------------------------------
    def _snapshot(self) -> ProgressSnapshot:
        now = time.monotonic()
        # Lines answered by this run only: skipped (resumed) lines cost no time.
        rate = self._meter.update(now, self.counters.answered)
        stats = self._scheduler.statistics() if self._scheduler is not None else None
        return progress_snapshot(self.counters, stats, elapsed=now - self._started, rate=rate)

    async def _write_report(self, *, live: bool) -> None:
        """Rewrite --report from a snapshot taken here; drawing it happens off the loop."""
        path = self.options.report
        if path is None or self._scheduler is None:
            return
        stats = self._scheduler.statistics()
        refresh = _REPORT_EVERY if live else None
        try:
            await anyio.to_thread.run_sync(
                functools.partial(write_report, stats, path, refresh_seconds=refresh)
            )
        except OSError as exc:
            self._warn(f"cannot write the report {path}: {exc.strerror}")

    def _warn_resume(self, state: ResumeState) -> None:
        parts = [f"resuming: {state.kept} results already in {self.options.output} are kept"]
        if state.dropped:
            parts.append(f"{state.dropped} failed or bad lines will be redone")
        if state.torn:
            parts.append("a torn last line was removed")
        self._say("; ".join(parts))

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
