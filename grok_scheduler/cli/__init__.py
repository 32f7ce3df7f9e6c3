"""The command line: ``grok-scheduler run | demo | simulate | serve``, one subcommand registry.

Each subcommand lives in its own module and registers its parser (with a ``handler``) here:
``run`` in :mod:`._run`, ``demo`` in :mod:`._demo`, ``simulate`` in the simulator's own CLI.
Exit codes: 0 every job succeeded, 1 some failed (the output says which), 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from ._demo import add_demo_parser
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from ._options import RunOptions
from ._run import RunReport, add_run_parser, run_bulk

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

if TYPE_CHECKING:  # argparse's action class is not subscriptable at run time
    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_simulate_parser(subparsers: _Subparsers) -> None:
    # Lazily: importing grok_scheduler.cli (for run_bulk, RunOptions) need not load the server.
    from ..simulator._cli import add_simulate_parser, run_simulate

    add_simulate_parser(subparsers)
    subparsers.choices["simulate"].set_defaults(handler=run_simulate)


def _add_serve_parser(subparsers: _Subparsers) -> None:
    # Lazily, like simulate: the gateway's server is loaded only for `serve`.
    from ._serve import add_serve_parser

    add_serve_parser(subparsers)


SUBCOMMANDS: tuple[Callable[[_Subparsers], None], ...] = (
    add_run_parser,
    add_demo_parser,
    _add_simulate_parser,
    _add_serve_parser,
)
"""Every subcommand, in help order: each adds its parser and sets ``handler`` on it."""


def build_parser() -> argparse.ArgumentParser:
    """The ``grok-scheduler`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="grok-scheduler",
        description="Get LLM work through the xAI Grok API as fast as the provider allows, "
        "and never lose it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def _parser_of(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the subcommand ``args`` were parsed for (else ``parser`` itself)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices.get(getattr(args, "command", None) or "")
            if isinstance(found, argparse.ArgumentParser):
                return found
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``grok-scheduler``; returns the exit status."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # The subcommand's usage, not the top-level one: it is the command that was misused.
            _parser_of(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
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
