"""A server that cannot be reached at all stops the run within seconds (issue 13, item 11).

| before the server's first answer                 | documented behaviour                        |
|--------------------------------------------------|---------------------------------------------|
| connections refused (3+ attempts over 5+ s)      | the run stops: APIConnectionError for all,  |
|                                                  | saying how often and how long it tried      |
| a short blip of refused connections              | retried as today, the job succeeds          |
| timeouts (a slow server)                         | retried as today, the job succeeds          |
| refused after the server answered once           | retried as today, the job succeeds          |
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import TEST_KEY, Server, make_scheduler, ok

from grok_scheduler import (
    APIConnectionError,
    APITimeoutError,
    FakeClock,
    MockTransport,
    RetryPolicy,
    Scheduler,
    TransportResponse,
)
from grok_scheduler._core._retry import UNREACHABLE_SECONDS
from grok_scheduler._wire._classify import connection_error

_JOBS = 50


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


def _refused() -> BaseException:
    return ConnectionRefusedError(111, "Connection refused")


def _mapped_refused() -> BaseException:
    # What the aiohttp transport raises for a refused connection: our typed, retryable error.
    return connection_error(_refused(), retryable=True)


class _Dead:
    """Nothing listens: every call is refused (the first ``refusals`` only, if given)."""

    def __init__(self, raise_: Any, refusals: int | None = None) -> None:
        self.raise_ = raise_
        self.refusals = refusals
        self.calls = 0

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        self.calls += 1
        if self.refusals is None or self.calls <= self.refusals:
            raise self.raise_()
        return ok(body["messages"][-1]["content"])


@pytest.mark.parametrize("raise_", [_refused, _mapped_refused], ids=["oserror", "transport"])
async def test_a_dead_url_stops_the_run_within_seconds(clock: FakeClock, raise_: Any) -> None:
    """Every connection refused: all jobs fail with APIConnectionError within ~10 s, not 15 min."""
    server = _Dead(raise_)
    async with Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockTransport(server, clock=clock),
        max_concurrency=4,
    ) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(_JOBS)]
        waiter = asyncio.ensure_future(asyncio.wait(futures))
        await clock.run_until_done(waiter, limit=2 * UNREACHABLE_SECONDS)
        stopped_at = clock.now()
        errors = [_connection_error(future) for future in futures]
        # One job got the reason: what was tried, and the refusal itself.
        reasons = [str(e) for e in errors if str(e).startswith("cannot connect")]
        assert len(reasons) == 1
        assert "attempts over" in reasons[0]
        assert "Connection refused" in reasons[0]
        # The others were not sent (again), and say so with the same typed error.
        stopped = "the run stopped after APIConnectionError: cannot connect"
        others = [e for e in errors if not str(e).startswith("cannot connect")]
        assert all(stopped in str(e) for e in others)
        never_sent = [e for e in others if e.attempts == 0]
        assert never_sent
        assert all(str(e).startswith("not sent:") for e in never_sent)
        assert all(str(e).startswith("not retried:") for e in others if e not in never_sent)
        assert server.calls < _JOBS
        # New work is refused at once, the same way.
        with pytest.raises(APIConnectionError, match="not sent: the run stopped"):
            scheduler.submit_nowait("later")
    assert UNREACHABLE_SECONDS <= stopped_at < 2 * UNREACHABLE_SECONDS


def _connection_error(future: asyncio.Future[Any]) -> APIConnectionError:
    error = future.exception()
    assert isinstance(error, APIConnectionError)
    assert not isinstance(error, APITimeoutError)
    return error


async def test_a_short_blip_of_refusals_at_start_up_is_ridden_out(clock: FakeClock) -> None:
    """Two refusals, then the server is up: the job succeeds, nothing is stopped."""
    server = _Dead(_refused, refusals=2)
    async with Scheduler(
        api_key=TEST_KEY, clock=clock, transport=MockTransport(server, clock=clock)
    ) as scheduler:
        future = scheduler.submit_nowait("p")
        await clock.run_until_done(future, limit=60.0)
    assert future.result().attempts == 3


async def test_refusals_for_a_while_after_a_first_answer_are_retried(clock: FakeClock) -> None:
    """Once the server answered, refused connections are retried as before, past 5 s."""
    calls = 0

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        nonlocal calls
        calls += 1
        if calls == 1 or calls > 5:
            return ok("fine")
        raise _refused()

    slow_backoff = RetryPolicy(base_delay=2.0, max_delay=30.0)
    async with Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockTransport(handler, clock=clock),
        retry=slow_backoff,
    ) as scheduler:
        await clock.run_until_done(scheduler.submit_nowait("first"))
        started = clock.now()
        future = scheduler.submit_nowait("second")
        await clock.run_until_done(future, limit=300.0)
    assert future.result().attempts == 5
    assert clock.now() - started > UNREACHABLE_SECONDS


async def test_timeouts_before_a_first_answer_are_not_a_dead_url(clock: FakeClock) -> None:
    """A slow server (three timeouts over 9 s, then an answer) is not stopped."""
    server = Server(clock, latency=0.1)
    server.script.extend([None, None, None])  # hang: each call times out
    async with make_scheduler(clock, server, timeout=3.0) as scheduler:
        future = scheduler.submit_nowait("p")
        await clock.run_until_done(future, limit=120.0)
    assert future.result().attempts == 4
