"""Values users see: priorities, usage, results."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Endpoint", "Priority", "Result", "Usage"]

USD_TICKS_PER_USD = 10_000_000_000


class Priority(enum.IntEnum):
    """Named priority levels. A LOWER number is MORE urgent; any int works (e.g. -5 or 7)."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class Endpoint(enum.StrEnum):
    """The xAI endpoints a job can be sent to."""

    CHAT_COMPLETIONS = "chat/completions"
    RESPONSES = "responses"


def _int_field(source: object, name: str) -> int:
    # Bodies come from json.loads, so a plain dict check (much cheaper than an ABC check on
    # the per-call path) is enough.
    if type(source) is not dict:
        return 0
    value = source.get(name)
    # bool is an int subclass; a server sending true/false here is malformed, not a count.
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    return 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one call. Reasoning tokens count toward ``total_tokens`` (and limits)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    cost_in_usd_ticks: int | None = None

    @property
    def cost_usd(self) -> float | None:
        """Cost in US dollars, when the server reported it."""
        if self.cost_in_usd_ticks is None:
            return None
        return self.cost_in_usd_ticks / USD_TICKS_PER_USD

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Usage:
        """Read chat-completions or responses usage; missing or malformed fields count as 0."""
        usage = body.get("usage")
        if type(usage) is not dict:
            return cls()
        if "input_tokens" in usage or "output_tokens" in usage:
            prompt = _int_field(usage, "input_tokens")
            completion = _int_field(usage, "output_tokens")
            reasoning = _int_field(usage.get("output_tokens_details"), "reasoning_tokens")
            cached = _int_field(usage.get("input_tokens_details"), "cached_tokens")
        else:
            prompt = _int_field(usage, "prompt_tokens")
            completion = _int_field(usage, "completion_tokens")
            reasoning = _int_field(usage.get("completion_tokens_details"), "reasoning_tokens")
            cached = _int_field(usage.get("prompt_tokens_details"), "cached_tokens")
        total = _int_field(usage, "total_tokens")
        if total == 0:
            # xAI keeps reasoning outside completion_tokens but inside total_tokens.
            total = prompt + completion + reasoning
        ticks_raw = usage.get("cost_in_usd_ticks")
        ticks = ticks_raw if type(ticks_raw) is int else None
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            cached_tokens=cached,
            total_tokens=total,
            cost_in_usd_ticks=ticks,
        )


@dataclass(frozen=True, slots=True)
class Result:
    """A successful job: the answer and how it was obtained."""

    text: str
    usage: Usage
    model: str | None
    request_id: str | None
    attempts: int
    queued_seconds: float
    in_flight_seconds: float
    finish_reason: str | None
    body: Mapping[str, Any] = field(repr=False)
    metadata: Any = None
    status_code: int = 200
    raw_body: bytes = field(default=b"", repr=False, compare=False)
    """The response body exactly as the server sent it (lets bulk output skip re-encoding)."""
