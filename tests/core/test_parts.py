"""The scheduler's parts on their own: argument checks and the gate's shared state."""

from __future__ import annotations

import math
from typing import Any

import pytest

from grok_scheduler import Endpoint, InvalidJobError, RequestTooLargeError
from grok_scheduler._core._gate import GateState
from grok_scheduler._core._settings import (
    check_fits,
    job_arguments,
    scheduler_settings,
)

_DEFAULTS: dict[str, Any] = {
    "model": "grok-4",
    "endpoint": Endpoint.CHAT_COMPLETIONS,
    "base_url": "https://api.x.ai/v1",
    "max_concurrency": 8,
    "concurrency_cap": 1024,
    "requests_per_second": None,
    "tokens_per_minute": None,
    "timeout": None,
    "burst_seconds": 1.0,
    "aging_seconds": 60.0,
    "default_max_tokens": None,
    "stop_on_fatal": True,
    "urgent_share": 0.25,
    "urgent_window": 60.0,
    "log_jobs": False,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"requests_per_second": -1.0}, "requests_per_second"),
        ({"tokens_per_minute": math.inf}, "tokens_per_minute"),
        ({"timeout": 0}, "timeout"),
        ({"urgent_share": 1.0}, "urgent_share"),
        ({"model": ""}, "model"),
        # The first bad argument in the constructor's order is the one reported.
        ({"max_concurrency": 0, "model": ""}, "max_concurrency"),
    ],
)
def test_bad_constructor_arguments_are_refused(change: dict[str, Any], message: str) -> None:
    """Each bad constructor argument raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        scheduler_settings(**{**_DEFAULTS, **change})


def test_settings_take_endpoint_strings_and_size_the_pool() -> None:
    """An endpoint string becomes the enum; the pool is max_concurrency, else the cap."""
    settings = scheduler_settings(**{**_DEFAULTS, "endpoint": "responses"})
    assert settings.endpoint is Endpoint.RESPONSES
    assert settings.connections == 8
    automatic = scheduler_settings(**{**_DEFAULTS, "max_concurrency": None, "concurrency_cap": 64})
    assert automatic.connections == 64


def _job(**change: Any) -> Any:
    options: dict[str, Any] = {
        "priority": 2,
        "model": None,
        "max_tokens": None,
        "temperature": None,
        "endpoint": None,
        "timeout": None,
        "deadline": None,
        "extra_body": None,
    }
    options.update(change)
    prompt = options.pop("prompt", "hello")
    settings = scheduler_settings(**{**_DEFAULTS, "default_max_tokens": 64})
    return job_arguments(settings, prompt, **options)


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "  "},
        {"prompt": []},
        {"prompt": [{"content": "no role"}]},
        {"prompt": b"bytes"},
        {"priority": 2_000_000},
        {"priority": False},
        {"max_tokens": 0},
        {"timeout": -1.0},
        {"deadline": math.nan},
        {"endpoint": "nowhere"},
        {"temperature": math.inf},
        {"extra_body": {"x": object()}},
    ],
)
def test_bad_job_arguments_are_refused(change: dict[str, Any]) -> None:
    """Each bad per-job argument raises InvalidJobError before anything is queued."""
    with pytest.raises(InvalidJobError):
        _job(**change)


def test_job_arguments_fill_in_the_defaults() -> None:
    """Model, endpoint and max_tokens default to the scheduler's; temperature joins options."""
    args = _job(temperature=0.5, extra_body={"seed": 1})
    assert (args.model, args.endpoint, args.max_tokens) == (
        "grok-4",
        Endpoint.CHAT_COMPLETIONS,
        64,
    )
    assert args.options == {"seed": 1, "temperature": 0.5}


def test_a_job_larger_than_a_minute_of_tokens_never_fits() -> None:
    """A job estimated beyond tokens_per_minute is refused; no limit means anything fits."""
    check_fits(1_000, 1_000)
    check_fits(10**9, None)
    with pytest.raises(RequestTooLargeError):
        check_fits(1_001, 1_000)


def test_the_first_answer_opens_the_pool_and_wakes_the_gate() -> None:
    """Only the first call to end (or one ending while a job waits for a slot) wakes the gate."""
    state = GateState()
    state.call_started(5.0)
    state.call_started(6.0)
    assert (state.in_flight, state.first_call_at) == (2, 5.0)
    assert state.call_ended() is True
    assert state.heard_back
    assert state.call_ended() is False
    state.waiting_for_slot = True
    state.call_started(7.0)
    assert state.call_ended() is True
    assert state.in_flight == 0
