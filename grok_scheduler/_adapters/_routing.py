"""Which raw request is a model call, and its priority header: shared by transport and gateway.

Free of httpx and aiohttp, so the gateway need not install httpx, nor the transport aiohttp's
server side.
"""

from __future__ import annotations

from .._models import Priority

__all__ = ["PRIORITY_HEADER", "parse_priority", "scheduled_endpoint"]

PRIORITY_HEADER = "x-grok-scheduler-priority"
"""A request header naming the call's priority (``high``, ``0``, ...); never sent upstream."""

_SCHEDULED = ("chat/completions", "responses")


def parse_priority(value: str) -> int:
    """A priority header's value: an int, or a :class:`Priority` name; ValueError otherwise."""
    text = value.strip()
    try:
        return Priority[text.upper()].value
    except KeyError:
        pass
    try:
        return int(text)
    except ValueError:
        names = ", ".join(level.name.lower() for level in Priority)
        raise ValueError(f"{PRIORITY_HEADER} must be an int or one of {names}") from None


def scheduled_endpoint(method: str, path: str) -> str | None:
    """``chat/completions`` or ``responses`` when a request is a model call to schedule."""
    if method.upper() != "POST":
        return None
    for endpoint in _SCHEDULED:
        if path.rstrip("/").endswith("/" + endpoint):
            return endpoint
    return None
