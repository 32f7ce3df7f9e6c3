"""The ambient priority: a context variable that raw calls (the httpx transport, the gateway) read.

Code that calls xAI through an SDK cannot pass ``priority=`` on each call; a ``with
scheduler.priority(Priority.HIGH):`` block sets it for every call made inside it, including in
tasks started there (contextvars are copied into new tasks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["current_priority", "priority_scope"]

_PRIORITY: ContextVar[int | None] = ContextVar("grok_scheduler_priority", default=None)


def current_priority() -> int | None:
    """The priority set by the innermost enclosing :func:`priority_scope`, or None."""
    return _PRIORITY.get()


@contextlib.contextmanager
def priority_scope(priority: int) -> Iterator[None]:
    """Run the block with ``priority`` as the default of every raw call made in it."""
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"a priority is an int or a Priority, got {priority!r}")
    token = _PRIORITY.set(int(priority))
    try:
        yield
    finally:
        _PRIORITY.reset(token)
