"""Bad inputs, from the user and from the server: each gets a clear typed error or is tolerated.

| input                                   | documented behaviour                                |
|-----------------------------------------|-----------------------------------------------------|
| priority not an int, or beyond float    | InvalidJobError at submit                           |
| max_tokens <= 0, > 10M, not an int      | InvalidJobError at submit                           |
| empty / blank prompt, empty message list| InvalidJobError at submit                           |
| metadata that JSON cannot encode        | tolerated: never sent, handed back on the Result    |
| extra_body that JSON cannot encode      | InvalidJobError; no call is left counted in flight  |
| garbage Retry-After                     | ignored: normal backoff, the job succeeds           |
| Retry-After above max_retry_after       | that job: RateLimitError at once; others not stalled|
| negative x-ratelimit-remaining-*        | ignored: the job succeeds, the pool is not paused   |
| 200 that is not JSON / lacks choices    | retried, then APIResponseValidationError            |
| a 200 far larger than expected          | tolerated: the whole text is returned               |
| a prompt larger than the token limit    | RequestTooLargeError at submit (never sent)         |
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any, cast

import pytest
from fakes import Server, error, make_scheduler, ok

from grok_scheduler import (
    APIResponseValidationError,
    FakeClock,
    InvalidJobError,
    LocalLimiter,
    Priority,
    RateLimitError,
    RequestTooLargeError,
    Result,
    RetryPolicy,
    SchedulerError,
    TransportResponse,
)

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3, max_retry_after=60.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _tolerant_server(clock: FakeClock) -> Server:
    return Server(clock, latency=0.01)


async def _settle(clock: FakeClock, *futures: asyncio.Future[Any], limit: float = 3600.0) -> None:
    """Run virtual time until every future is done, however it ended."""
    waiter = asyncio.ensure_future(asyncio.wait(futures))
    await clock.run_until_done(cast("asyncio.Future[object]", waiter), limit=limit)


# --------------------------------------------------------------------------- user input


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


# --------------------------------------------------------------------------- server input


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> TransportResponse:
    return TransportResponse(status, body, headers or {})


@pytest.mark.parametrize("value", ["soon", "-5", "1e309", "NaN", "", "Thu, 99 Foo 2015", "∞"])
async def test_garbage_retry_after_is_ignored_and_the_job_succeeds(
    clock: FakeClock, value: str
) -> None:
    """A 429 with an unreadable Retry-After falls back to normal backoff; the retry succeeds."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": value}))
    async with make_scheduler(clock, server, retry=FAST_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=30.0)
    assert future.result().attempts == 2


async def test_retry_after_above_the_policy_fails_that_job_at_once(clock: FakeClock) -> None:
    """Retry-After: 86400 with max_retry_after=60 fails the job with RateLimitError."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "86400"}))
    async with make_scheduler(clock, server, retry=FAST_RETRY) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=5.0)
        exc = future.exception()
        assert isinstance(exc, RateLimitError)
        assert exc.retry_after == 86400
        await scheduler.aclose(cancel=True)


async def test_retry_after_above_the_policy_does_not_stall_other_jobs(clock: FakeClock) -> None:
    """After a too-long Retry-After, other jobs still run within max_retry_after."""
    server = _tolerant_server(clock)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "86400"}))
    async with make_scheduler(clock, server, retry=FAST_RETRY, max_concurrency=1) as scheduler:
        first = scheduler.submit_nowait("first")
        await _settle(clock, first, limit=5.0)
        second = scheduler.submit_nowait("second")
        await _settle(clock, second, limit=FAST_RETRY.max_retry_after)
        assert second.result().text
        await scheduler.aclose(cancel=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining-requests": "-5", "x-ratelimit-reset-requests": "1s"},
        {"x-ratelimit-remaining-tokens": "-100000", "x-ratelimit-limit-tokens": "-1"},
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "-30"},
        {"RateLimit": '"requests";r=-3;t=-1', "RateLimit-Policy": '"requests";q=-10;w=0'},
    ],
)
async def test_negative_rate_limit_headers_are_ignored(
    clock: FakeClock, headers: dict[str, str]
) -> None:
    """Negative remaining/limit/reset values neither fail jobs nor pause or resize the pool."""
    body = ok().body

    def answer(_body: object) -> TransportResponse:
        return _raw(200, body, headers)

    server = Server(clock, latency=0.01, answer=answer)
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(5)]
        await _settle(clock, *futures, limit=5.0)
        state = scheduler.statistics().limiter
    assert all(f.result().attempts == 1 for f in futures)
    assert state is not None
    assert state.requests_per_second == 10
    assert state.paused_for == 0.0


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


# --------------------------------------------------------------------------- regressions
# Each test below first failed against the core (reported from issue 7, fixed in c3206e0).


class _SlowLimiter(LocalLimiter):
    """A LocalLimiter whose acquisition takes a round trip, as a shared (Redis) limiter's does."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(requests_per_second=None, tokens_per_minute=None, now=clock.now())
        self.clock = clock

    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        await self.clock.sleep(0.01)
        return self.try_acquire(tokens, self.clock.now())


async def test_a_retry_due_during_acquisition_is_neither_lost_nor_duplicated(
    clock: FakeClock,
) -> None:
    """Both jobs end exactly once when a retry falls due while the gate awaits the limiter."""
    server = Server(clock, latency=0.0)
    server.script.append(error(500, "Internal error", code="Internal error"))
    retry = RetryPolicy(base_delay=0.002, max_delay=0.002, max_attempts=3)
    async with make_scheduler(
        clock, server, limiter=_SlowLimiter(clock), retry=retry, max_concurrency=1
    ) as scheduler:
        urgent = scheduler.submit_nowait("urgent", priority=Priority.CRITICAL)
        low = scheduler.submit_nowait("low", priority=Priority.LOW)
        with contextlib.suppress(TimeoutError):  # the lost job leaves nothing to wake
            await _settle(clock, urgent, low, limit=10.0)
        assert urgent.done() and isinstance(urgent.result(), Result)
        assert low.done() and isinstance(low.result(), Result)
        assert sorted(server.prompts) == ["low", "urgent", "urgent"]
        await scheduler.aclose(cancel=True)


async def test_the_scheduler_wide_timeout_bounds_each_call(clock: FakeClock) -> None:
    """Scheduler(timeout=0.5): a call that never answers is given up after 0.5 s."""
    server = Server(clock, latency=0.01)
    server.script.append(None)  # hang forever
    retry = RetryPolicy(max_attempts=1)
    async with make_scheduler(clock, server, timeout=0.5, retry=retry) as scheduler:
        future = scheduler.submit_nowait("p")
        await _settle(clock, future, limit=5.0)
        assert isinstance(future.exception(), SchedulerError)
        await scheduler.aclose(cancel=True)
