"""structlog configuration for the command line (the library never configures logging).

On a terminal events are rendered for people; otherwise one JSON object per line. Everything
goes to the *current* ``sys.stderr`` (looked up at each write, so a live progress display that
redirects stderr still places log lines above itself). A last processor masks anything that
looks like an API key, whatever an event carries. Once the scheduler stopped the run (an error
that fails every job), the failure event of each job never sent is dropped: the run says why
once, not once per job.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from .._errors import redact

__all__ = ["LOG_LEVELS", "configure_logging"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class _CurrentStderr:
    """A file-like object that writes to whatever ``sys.stderr`` is at the time."""

    __slots__ = ("__weakref__",)  # structlog keeps a lock per output file in a WeakKeyDictionary

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _redact_event(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


class _QuietAfterStop:
    """Drops ``grok_scheduler.failed`` of jobs never sent (attempts 0) after a fatal stop."""

    __slots__ = ("stopped",)

    def __init__(self) -> None:
        self.stopped = False

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        name = event.get("event")
        if name == "grok_scheduler.stopped":
            self.stopped = True
        elif self.stopped and name == "grok_scheduler.failed" and event.get("attempts") == 0:
            raise structlog.DropEvent
        return event


def configure_logging(level: str = "warning", *, json: bool | None = None) -> Callable[[], None]:
    """Configure structlog for a CLI run; return a function that restores the previous setup.

    ``json=None`` picks JSON lines unless stderr is a terminal.
    """
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LOG_LEVELS)}")
    previous = structlog.get_config()
    if json is None:
        json = not _stderr_is_terminal()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=_stderr_is_terminal())
    )
    structlog.configure(
        processors=[
            _QuietAfterStop(),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )

    def restore() -> None:
        structlog.configure(**previous)

    return restore


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
