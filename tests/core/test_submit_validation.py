"""Bad submit arguments: each gets a clear typed error at submit, or is tolerated.

| input                                   | documented behaviour                                |
|-----------------------------------------|-----------------------------------------------------|
| priority not an int, or beyond float    | InvalidJobError at submit                           |
| max_tokens <= 0, > 10M, not an int      | InvalidJobError at submit                           |
| empty / blank prompt, empty message list| InvalidJobError at submit                           |
| metadata that JSON cannot encode        | tolerated: never sent, handed back on the Result    |
| extra_body that JSON cannot encode      | InvalidJobError; no call is left counted in flight  |
| a prompt larger than the token limit    | RequestTooLargeError at submit (never sent)         |
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import pytest
from fakes import Server, make_scheduler

from grok_scheduler import (
    FakeClock,
    InvalidJobError,
    RequestTooLargeError,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _tolerant_server(clock: FakeClock) -> Server:
    return Server(clock, latency=0.01)


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"priority": "high"}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": None}, "priority"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 10_000_001}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": math.nan}, "temperature"),
        ({"timeout": -1.0}, "timeout"),
        ({"deadline": math.inf}, "deadline"),
        ({"endpoint": "/v1/nowhere"}, "endpoint"),
    ],
)
async def test_bad_submit_options_raise_invalid_job_error(
    clock: FakeClock, options: dict[str, object], fragment: str
) -> None:
    """Each bad option raises InvalidJobError naming the option, and nothing is queued."""
    async with make_scheduler(clock, _tolerant_server(clock)) as scheduler:
        with pytest.raises(InvalidJobError, match=fragment):
            scheduler.submit_nowait("a fine prompt", **options)  # type: ignore[arg-type]
        assert scheduler.statistics().queued == 0


@pytest.mark.parametrize("prompt", ["", "   \n\t", [], [{"content": "no role"}], None, 42, b"x"])
async def test_empty_or_malformed_prompts_raise_invalid_job_error(
    clock: FakeClock, prompt: object
) -> None:
    """Empty, blank and wrongly shaped prompts are refused at submit."""
    async with make_scheduler(clock, _tolerant_server(clock)) as scheduler:
        with pytest.raises(InvalidJobError):
            scheduler.submit_nowait(prompt)  # type: ignore[arg-type]


async def test_astronomical_priority_is_a_typed_error(clock: FakeClock) -> None:
    """An int priority beyond float range is refused with InvalidJobError."""
    async with make_scheduler(clock, _tolerant_server(clock)) as scheduler:
        with pytest.raises(InvalidJobError):
            scheduler.submit_nowait("p", priority=10**400)


async def test_metadata_json_cannot_encode_is_returned_untouched(clock: FakeClock) -> None:
    """Metadata is never serialised: an object, a set or a lambda comes back on the Result."""
    metadata = {"object": object(), "set": {1, 2}, "call": lambda: None}
    async with make_scheduler(clock, _tolerant_server(clock)) as scheduler:
        future = scheduler.submit_nowait("p", metadata=metadata)
        await _settle(clock, future)
    assert future.result().metadata is metadata


async def test_extra_body_json_cannot_encode_is_refused_cleanly(clock: FakeClock) -> None:
    """A non-serialisable extra_body is a typed InvalidJobError and leaves no call in flight."""
    async with make_scheduler(clock, _tolerant_server(clock)) as scheduler:
        try:
            future = scheduler.submit_nowait("p", extra_body={"x": object()})
        except InvalidJobError:
            return
        await _settle(clock, future)
        assert isinstance(future.exception(), InvalidJobError)
        assert scheduler.statistics().in_flight == 0


async def test_prompt_larger_than_the_token_limit_is_refused_at_submit(clock: FakeClock) -> None:
    """A job whose estimate exceeds tokens_per_minute raises RequestTooLargeError, never sent."""
    server = _tolerant_server(clock)
    async with make_scheduler(clock, server, tokens_per_minute=1000) as scheduler:
        with pytest.raises(RequestTooLargeError, match="tokens per minute"):
            scheduler.submit_nowait("word " * 5000)
        with pytest.raises(RequestTooLargeError):
            scheduler.submit_nowait("short", max_tokens=5000)
    assert server.sent == []
