"""Answers the wire layer cannot use, or did not expect: retried to a typed error, or tolerated.

| input                                   | documented behaviour                                |
|-----------------------------------------|-----------------------------------------------------|
| 200 that is not JSON / lacks choices    | retried, then APIResponseValidationError            |
| a 200 far larger than expected          | tolerated: the whole text is returned               |
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from fakes import Server, make_scheduler, ok

from grok_scheduler import (
    APIResponseValidationError,
    FakeClock,
    RetryPolicy,
    TransportResponse,
)

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3, max_retry_after=60.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> TransportResponse:
    return TransportResponse(status, body, headers or {})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>oops</html>", "not json"),
        (b"", "empty"),
        (b'{"id": "x", "object": "chat.compl', "truncated"),
        (b"[1, 2, 3]", "json array"),
        (json.dumps({"id": "x", "usage": {}}).encode(), "no choices"),
        (json.dumps({"choices": []}).encode(), "empty choices"),
        (json.dumps({"choices": [{"message": {"content": 7}}]}).encode(), "content not text"),
    ],
)
async def test_unusable_200_is_retried_then_a_validation_error(
    clock: FakeClock, body: bytes, reason: str
) -> None:
    """A 200 without a usable answer is retried, then fails with APIResponseValidationError."""
    server = Server(clock, latency=0.01, answer=lambda _b: _raw(200, body))
    async with make_scheduler(clock, server, retry=FAST_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=10.0)
    exc = future.exception()
    assert isinstance(exc, APIResponseValidationError), reason
    assert exc.status_code == 200
    assert exc.attempts == FAST_RETRY.max_attempts
    assert len(server.sent) == FAST_RETRY.max_attempts


async def test_a_response_far_larger_than_expected_is_returned_whole(clock: FakeClock) -> None:
    """An 8 MB answer to a max_tokens=16 request is tolerated and returned intact."""
    text = "x" * (8 * 1024 * 1024)
    server = Server(clock, latency=0.01, answer=lambda _b: ok(text))
    async with make_scheduler(clock, server) as scheduler:
        future = scheduler.submit_nowait("p", max_tokens=16)
        await _settle(clock, future)
    assert len(future.result().text) == len(text)
