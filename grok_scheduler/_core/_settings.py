"""Validation of the scheduler's constructor and per-job arguments, in one place.

Everything a caller can get wrong is checked here, before anything is queued or sent: the
constructor's numbers become a frozen :class:`SchedulerSettings`, one job's arguments become a
frozen :class:`JobArguments`. Pure functions and values: no clock, no queue, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidJobError, RequestTooLargeError
from .._models import Endpoint

__all__ = [
    "MAX_TOKENS_LIMIT",
    "MESSAGE_ROLES",
    "PRIORITY_LIMIT",
    "JobArguments",
    "SchedulerSettings",
    "check_fits",
    "check_positive",
    "job_arguments",
    "scheduler_settings",
    "validate_prompt",
]

MAX_TOKENS_LIMIT = 10_000_000
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
"""The roles a chat message may have (OpenAI-compatible, as xAI accepts them)."""
# Priorities are heap keys multiplied by the aging interval: keep them well inside float range.
PRIORITY_LIMIT = 1_000_000


def check_positive(name: str, value: float | None) -> None:
    """Raise ``ValueError`` unless ``value`` is None or a positive finite number (not a bool)."""
    if value is not None and not (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value > 0
        and math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a positive finite number or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """The scheduler's validated configuration (never the API key: this value has a repr)."""

    model: str
    endpoint: Endpoint
    base_url: str
    max_concurrency: int | None
    concurrency_cap: int
    requests_per_second: float | Mapping[str, float] | None
    tokens_per_minute: float | Mapping[str, float] | None
    timeout: float | None
    burst_seconds: float
    aging_seconds: float | None
    default_max_tokens: int | None
    stop_on_fatal: bool
    urgent_share: float
    urgent_window: float
    log_jobs: bool
    # submit streams on the wire (answer assembled, hangs cut by the watchdog): issue 14.
    # None: when a hung call sent plain would be held long (_stream_call.streams_on_wire).
    stream_on_wire: bool | None = None

    @property
    def connections(self) -> int:
        """Calls that may ever be in flight at once: the connection pool's size."""
        return self.max_concurrency or self.concurrency_cap


def scheduler_settings(
    *,
    model: str,
    endpoint: Endpoint | str,
    base_url: str,
    max_concurrency: int | None,
    concurrency_cap: int,
    requests_per_second: float | Mapping[str, float] | None,
    tokens_per_minute: float | Mapping[str, float] | None,
    timeout: float | None,
    burst_seconds: float,
    aging_seconds: float | None,
    default_max_tokens: int | None,
    stop_on_fatal: bool,
    urgent_share: float,
    urgent_window: float,
    log_jobs: bool,
    stream_on_wire: bool | None = None,
) -> SchedulerSettings:
    """Check the constructor's arguments (raising ``ValueError``) in the order it always did."""
    if max_concurrency is not None and not _positive_int(max_concurrency):
        raise ValueError(f"max_concurrency must be a positive int or None, got {max_concurrency!r}")
    if not _positive_int(concurrency_cap):
        raise ValueError(f"concurrency_cap must be a positive int, got {concurrency_cap!r}")
    requests_per_second = _per_model("requests_per_second", requests_per_second)
    tokens_per_minute = _per_model("tokens_per_minute", tokens_per_minute)
    check_positive("timeout", timeout)
    check_positive("aging_seconds", aging_seconds)
    check_positive("urgent_window", urgent_window)
    if not 0.0 <= urgent_share < 1.0:
        raise ValueError(f"urgent_share must be in [0, 1), got {urgent_share!r}")
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string")
    return SchedulerSettings(
        model=model,
        endpoint=Endpoint(endpoint),
        base_url=base_url,
        max_concurrency=max_concurrency,
        concurrency_cap=concurrency_cap,
        requests_per_second=requests_per_second,
        tokens_per_minute=tokens_per_minute,
        timeout=timeout,
        burst_seconds=burst_seconds,
        aging_seconds=aging_seconds,
        default_max_tokens=default_max_tokens,
        stop_on_fatal=stop_on_fatal,
        urgent_share=urgent_share,
        urgent_window=urgent_window,
        log_jobs=log_jobs,
        stream_on_wire=None if stream_on_wire is None else bool(stream_on_wire),
    )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _per_model(
    name: str, value: float | Mapping[str, float] | None
) -> float | Mapping[str, float] | None:
    """One positive figure, or a mapping of model names to positive figures (copied)."""
    if isinstance(value, Mapping):
        checked: dict[str, float] = {}
        for model, figure in value.items():
            if not isinstance(model, str) or not model:
                raise ValueError(f"{name}: model names must be non-empty strings, got {model!r}")
            check_positive(f"{name}[{model!r}]", figure)
            checked[model] = figure
        return checked
    check_positive(name, value)
    return value


@dataclass(frozen=True, slots=True)
class JobArguments:
    """One job's validated arguments, with the scheduler's defaults filled in."""

    messages: str | list[dict[str, Any]]
    model: str
    endpoint: Endpoint
    priority: int
    max_tokens: int | None
    options: dict[str, Any]
    timeout: float | None
    deadline: float | None  # seconds from submit, not yet a point in time


def job_arguments(
    settings: SchedulerSettings,
    prompt: object,
    *,
    priority: int,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    endpoint: Endpoint | str | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> JobArguments:
    """Check one job's arguments (raising :class:`InvalidJobError`) and fill in the defaults."""
    messages = validate_prompt(prompt)
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT
    ):
        raise InvalidJobError(
            f"priority must be an int from {-PRIORITY_LIMIT} to {PRIORITY_LIMIT} "
            f"or a Priority, got {priority!r}"
        )
    if max_tokens is None:
        max_tokens = settings.default_max_tokens
    if max_tokens is not None and (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or not 0 < max_tokens <= MAX_TOKENS_LIMIT
    ):
        raise InvalidJobError(
            f"max_tokens must be an int from 1 to {MAX_TOKENS_LIMIT}, got {max_tokens!r}"
        )
    for name, value in (("timeout", timeout), ("deadline", deadline)):
        try:
            check_positive(name, value)
        except ValueError as exc:
            raise InvalidJobError(str(exc)) from None
    try:
        kind = Endpoint(endpoint) if endpoint is not None else settings.endpoint
    except ValueError:
        raise InvalidJobError(f"unknown endpoint {endpoint!r}") from None
    options: dict[str, Any] = dict(extra_body) if extra_body else {}
    if options:
        try:
            json.dumps(options)
        except (TypeError, ValueError) as exc:
            raise InvalidJobError(f"extra_body cannot be sent as JSON: {exc}") from None
    if temperature is not None:
        if not isinstance(temperature, int | float) or not math.isfinite(temperature):
            raise InvalidJobError(f"temperature must be a number, got {temperature!r}")
        options["temperature"] = temperature
    return JobArguments(
        messages=messages,
        model=model or settings.model,
        endpoint=kind,
        priority=int(priority),
        max_tokens=max_tokens,
        options=options,
        timeout=timeout,
        deadline=deadline,
    )


def check_fits(estimated_tokens: int, tokens_per_minute: float | None) -> None:
    """Refuse a job that could never be sent: it needs more tokens than a minute allows."""
    if tokens_per_minute is not None and estimated_tokens > tokens_per_minute:
        raise RequestTooLargeError(
            f"this job needs about {estimated_tokens} tokens but the limit is "
            f"{tokens_per_minute:g} tokens per minute: it can never be sent"
        )


def validate_prompt(prompt: object) -> str | list[dict[str, Any]]:
    """A non-empty string, or a non-empty list of messages each with a ``role`` and ``content``."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidJobError("the prompt is empty")
        return prompt
    if isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
        messages: list[dict[str, Any]] = []
        for index, message in enumerate(prompt):
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise InvalidJobError(f"message {index} must be a mapping with a 'role'")
            if message["role"] not in MESSAGE_ROLES:
                # xAI answers 400 for any other role: refused here, it is never queued or sent.
                raise InvalidJobError(
                    f"message {index} has role {message['role']!r}; a role is one of "
                    f"{', '.join(sorted(MESSAGE_ROLES))}"
                )
            if "content" not in message:
                raise InvalidJobError(f"message {index} has no 'content'")
            messages.append(dict(message))
        if not messages:
            raise InvalidJobError("the message list is empty")
        return messages
    raise InvalidJobError(
        f"a prompt is a string or a list of messages, not {type(prompt).__name__}"
    )
