"""Request bodies: what a job becomes on the wire for each endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from grok_scheduler._core._job import Job
from grok_scheduler._models import Endpoint
from grok_scheduler._wire._request import request_body

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]

# endpoint, prompt, max_tokens, options, expected body
CASES: list[tuple[Endpoint, Any, int | None, dict[str, Any], dict[str, Any]]] = [
    (
        Endpoint.CHAT_COMPLETIONS,
        "hi",
        None,
        {},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        Endpoint.CHAT_COMPLETIONS,
        "hi",
        16,
        {},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
    ),
    (Endpoint.CHAT_COMPLETIONS, MESSAGES, None, {}, {"model": "m", "messages": MESSAGES}),
    (
        Endpoint.CHAT_COMPLETIONS,
        "hi",
        0,
        {"temperature": 0.2},
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 0,
            "temperature": 0.2,
        },
    ),
    (Endpoint.RESPONSES, "hi", None, {}, {"model": "m", "input": "hi"}),
    (
        Endpoint.RESPONSES,
        MESSAGES,
        32,
        {},
        {"model": "m", "input": MESSAGES, "max_output_tokens": 32},
    ),
    # Options are sent as given and win over the fields the scheduler fills in.
    (
        Endpoint.RESPONSES,
        "hi",
        32,
        {"max_output_tokens": 8, "store": False},
        {"model": "m", "input": "hi", "max_output_tokens": 8, "store": False},
    ),
    (
        Endpoint.CHAT_COMPLETIONS,
        "hi",
        None,
        {"model": "other"},
        {"model": "other", "messages": [{"role": "user", "content": "hi"}]},
    ),
]


@pytest.mark.parametrize(("endpoint", "prompt", "max_tokens", "options", "expected"), CASES)
def test_request_body(
    endpoint: Endpoint,
    prompt: Any,
    max_tokens: int | None,
    options: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    """Chat sends messages and max_tokens, Responses sends input and max_output_tokens."""
    body = request_body(
        endpoint=endpoint, model="m", prompt=prompt, max_tokens=max_tokens, options=options
    )
    assert body == expected


def test_request_body_leaves_its_inputs_alone() -> None:
    """Building a body twice gives the same body: options and messages are not modified."""
    options = {"temperature": 0.5}
    messages = [dict(m) for m in MESSAGES]
    first = request_body(
        endpoint=Endpoint.CHAT_COMPLETIONS,
        model="m",
        prompt=messages,
        max_tokens=4,
        options=options,
    )
    second = request_body(
        endpoint=Endpoint.CHAT_COMPLETIONS,
        model="m",
        prompt=messages,
        max_tokens=4,
        options=options,
    )
    assert first == second
    assert options == {"temperature": 0.5}
    assert messages == MESSAGES


async def test_job_payload_is_the_request_body() -> None:
    """A job's payload is exactly the wire body of its fields."""
    job = Job(
        prompt="hi",
        model="grok-4",
        endpoint=Endpoint.RESPONSES,
        priority=0,
        max_tokens=64,
        options={"store": False},
        metadata=None,
        timeout=None,
        deadline=None,
        estimated_tokens=10,
        characters=2,
        key=0.0,
        now=0.0,
        future=asyncio.get_running_loop().create_future(),
    )
    assert job.payload() == {
        "model": "grok-4",
        "input": "hi",
        "max_output_tokens": 64,
        "store": False,
    }
