"""Named events (``grok_scheduler.retry_scheduled`` and so on): the one place that logs.

A library must print nothing an application did not ask for, and an unconfigured structlog
prints every event to stdout. So an event goes through structlog only when the application (or
the command line) configured structlog; otherwise it goes to the standard library logger
``grok_scheduler``, which carries a ``NullHandler``: silent until the application configures
``logging``, as stamina falls back to stdlib logging.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from .._errors import redact

__all__ = ["LOGGER_NAME", "events"]

LOGGER_NAME = "grok_scheduler"

_stdlib = logging.getLogger(LOGGER_NAME)
_stdlib.addHandler(logging.NullHandler())


class EventLog:
    """Emits named events with flat fields; the methods mirror a structlog bound logger."""

    __slots__ = ()

    def debug(self, event: str, **fields: Any) -> None:
        _emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        _emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        _emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        _emit(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An ERROR event with the exception being handled attached."""
        _emit(logging.ERROR, event, fields, exc_info=True)

    def __repr__(self) -> str:
        return f"<EventLog logger={LOGGER_NAME!r} structlog={structlog.is_configured()}>"


_METHODS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


def _emit(level: int, event: str, fields: dict[str, Any], *, exc_info: bool = False) -> None:
    if structlog.is_configured():
        logger = structlog.get_logger(LOGGER_NAME)
        if exc_info:
            logger.exception(event, **fields)
        else:
            getattr(logger, _METHODS[level])(event, **fields)
        return
    if not _stdlib.isEnabledFor(level):
        return
    text = event + "".join(f" {key}={value!r}" for key, value in fields.items())
    _stdlib.log(
        level,
        "%s",
        redact(text),
        exc_info=exc_info,
        extra={"event_name": event, "event_fields": fields},
    )


events = EventLog()
