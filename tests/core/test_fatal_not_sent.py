"""Jobs failed by a fatal stop without being sent say so (issue 13, item 12, library side).

The job whose call got the fatal answer keeps the server's status and request id; every other
job gets the same exception type (``except AuthenticationError`` still works) with
``status_code=None``, ``request_id=None``, ``attempts=0`` and a "not sent" message naming the
first error, which stays available as ``__cause__``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import Server, error, make_scheduler

from grok_scheduler import (
    AuthenticationError,
    FakeClock,
    QuotaExhaustedError,
    RateLimitError,
    Result,
)

_BAD_KEY = "Incorrect API key provided: xa***ey. You can obtain an API key from https://console.x.ai."


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


async def _run(clock: FakeClock, server: Server, jobs: int) -> list[asyncio.Future[Result]]:
    async with make_scheduler(clock, server, max_concurrency=4) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(jobs)]
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(waiter, limit=60.0)
        with pytest.raises(AuthenticationError) as refused:
            scheduler.submit_nowait("later")
        _assert_not_sent(refused.value, "AuthenticationError", _BAD_KEY)
    return futures


def _assert_not_sent(exc: Any, first_type: str, reason: str) -> None:
    assert exc.status_code is None
    assert exc.request_id is None
    assert exc.attempts == 0
    assert exc.message == f"not sent: the run stopped after {first_type}: {reason}"
    assert str(exc) == exc.message  # no "Error code: 400" prefix for a call never made
    assert exc.__cause__ is not None
    assert exc.__cause__.status_code is not None


async def test_a_wrong_key_the_first_job_keeps_the_answer_the_rest_were_not_sent(
    clock: FakeClock,
) -> None:
    """A 400 "Incorrect API key": job 1 has 400 and its request id; jobs 2-5 say "not sent"."""
    server = Server(clock, latency=0.1, answer=lambda body: error(400, _BAD_KEY, code="bad key"))
    futures = await _run(clock, server, 5)
    assert len(server.sent) == 1
    first = futures[0].exception()
    assert isinstance(first, AuthenticationError)
    assert first.status_code == 400
    assert first.request_id == "req-err"
    assert first.attempts == 1
    for future in futures[1:]:
        exc = future.exception()
        assert isinstance(exc, AuthenticationError)
        _assert_not_sent(exc, "AuthenticationError", _BAD_KEY)
        assert exc.__cause__ is first


async def test_a_stop_on_a_429_type_keeps_the_type_without_its_status(clock: FakeClock) -> None:
    """Billing exhausted (a 429): the copies are QuotaExhaustedError with status None, not 429."""
    message = "Your team has used all available credits or reached its monthly spending limit."
    server = Server(clock, latency=0.1, answer=lambda body: error(429, message))
    async with make_scheduler(clock, server, max_concurrency=4) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(3)]
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(waiter, limit=60.0)
    first = futures[0].exception()
    assert isinstance(first, QuotaExhaustedError)
    assert first.status_code == 429
    for future in futures[1:]:
        exc = future.exception()
        assert isinstance(exc, QuotaExhaustedError)
        assert not isinstance(exc, RateLimitError)
        _assert_not_sent(exc, "QuotaExhaustedError", message)
