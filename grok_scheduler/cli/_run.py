"""The ``run`` subcommand around one bulk run: flags in; summary, ``--summary-json``, exit out.

Exit codes: 0 every job succeeded (or there was nothing to do), 1 some failed (the output says
which), 2 usage error (bad flags, no key, an unwritable output or summary path, an input edited
since the output was written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from typing import IO

import anyio

from .._errors import redact
from ._bulk import BulkRun
from ._exit import EXIT_FAILURES, EXIT_USAGE, UsageError
from ._logging import configure_logging
from ._options import RunOptions, build_run_parser, options_from_args
from ._progress import format_summary
from ._summary import RunReport

__all__ = ["RunReport", "add_run_parser", "execute", "run_bulk"]


async def run_bulk(
    options: RunOptions, *, stderr: IO[str] | None = None, handle_signals: bool = True
) -> RunReport:
    """Run a whole input file; print the summary; write ``--summary-json`` if asked."""
    err = stderr if stderr is not None else sys.stderr
    if options.via != "online":
        return await _run_roads(options, err)
    bulk = BulkRun(options, err)
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


async def _run_roads(options: RunOptions, err: IO[str]) -> RunReport:
    """``--via batch``: the Batch API road (see :mod:`._batch_run`); ``auto``: both roads."""
    from ._auto_run import format_auto_summary, run_auto
    from ._batch_run import format_batch_summary, run_batch

    if options.via == "auto":
        report = await run_auto(options, err)
        text = format_auto_summary(report.summary)
    else:
        report = await run_batch(options, err)
        text = format_batch_summary(report.summary)
    err.write(text + "\n")
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
