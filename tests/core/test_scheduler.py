"""The scheduler's behaviour in virtual time (no real sleeping)."""

from __future__ import annotations

import asyncio
import random

import pytest
from fakes import TEST_KEY, Server, error, make_scheduler, ok

from grok_scheduler import (
    APITimeoutError,
    AuthenticationError,
    DeadlineExceededError,
    FakeClock,
    InternalServerError,
    InvalidJobError,
    Priority,
    QuotaExhaustedError,
    RateLimitError,
    RequestTooLargeError,
    RetryPolicy,
    SchedulerClosedError,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_submit_returns_text_usage_and_attempts(clock: FakeClock) -> None:
    """A successful job resolves to a Result with the text, full usage and one attempt."""
    server = Server(clock)
    server.script.append(
        ok("hello there", prompt_tokens=7, completion_tokens=3, reasoning_tokens=4)
    )
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("Explain GCRA", metadata={"n": 1}))
        await clock.run_until_done(task)
        result = task.result()
    assert result.text == "hello there"
    assert result.usage.total_tokens == 14
    assert result.usage.reasoning_tokens == 4
    assert result.usage.cost_in_usd_ticks == 1000
    assert result.attempts == 1
    assert result.request_id == "req-ok"
    assert result.metadata == {"n": 1}
    assert result.in_flight_seconds == pytest.approx(0.1)


async def test_requests_per_second_paces_dispatch(clock: FakeClock) -> None:
    """rps=10: a first burst of half the bucket (4 of 9), then one request every 0.1 s."""
    server = Server(clock, latency=0.0)
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(20)]
        await clock.run_until_done(asyncio.gather(*futures))
    times = [t - 1000.0 for t, _ in server.sent]
    assert times[:4] == [0.0] * 4
    assert times[4:] == pytest.approx([0.05 + 0.1 * k for k in range(16)])


async def test_higher_priority_goes_first_and_fifo_within_level(clock: FakeClock) -> None:
    """Queued jobs leave in priority order (lower number first), FIFO within a level."""
    server = Server(clock, latency=0.0)
    async with make_scheduler(
        clock, server, requests_per_second=1, burst_seconds=1.0, max_concurrency=1
    ) as scheduler:
        futures = [
            scheduler.submit_nowait("low-1", priority=Priority.LOW),
            scheduler.submit_nowait("low-2", priority=Priority.LOW),
            scheduler.submit_nowait("high-1", priority=Priority.HIGH),
            scheduler.submit_nowait("normal-1", priority=Priority.NORMAL),
            scheduler.submit_nowait("high-2", priority=Priority.HIGH),
            scheduler.submit_nowait("crit", priority=-5),
        ]
        await clock.run_until_done(asyncio.gather(*futures))
    # All were queued before any worker ran, so the order is pure priority.
    assert server.prompts == ["crit", "high-1", "high-2", "normal-1", "low-1", "low-2"]


async def test_aging_lets_old_low_priority_work_overtake(clock: FakeClock) -> None:
    """A LOW job that waited longer than aging_seconds per level beats a fresh HIGH job."""
    server = Server(clock, latency=0.0)
    # One request per 20 s; LOW is two levels (10 s of aging) behind HIGH.
    async with make_scheduler(
        clock, server, requests_per_second=0.05, max_concurrency=1, aging_seconds=5.0
    ) as scheduler:
        first = scheduler.submit_nowait("first", priority=Priority.CRITICAL)
        low = scheduler.submit_nowait("old-low", priority=Priority.LOW)
        await clock.advance(11.0)
        high = scheduler.submit_nowait("new-high", priority=Priority.HIGH)
        await clock.run_until_done(asyncio.gather(first, low, high))
    assert server.prompts == ["first", "old-low", "new-high"]


async def test_transient_error_is_retried_through_the_queue(clock: FakeClock) -> None:
    """A 500 then a 200: the job succeeds on attempt 2 after a backoff, not at once."""
    server = Server(clock, latency=0.0)
    server.script += [error(500, "Internal error", code="Internal error"), ok("fine")]
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    async with make_scheduler(
        clock, server, requests_per_second=100, retry=policy, rng=random.Random(1)
    ) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p"))
        await clock.run_until_done(task)
    assert task.result().attempts == 2
    first, second = server.sent[0][0], server.sent[1][0]
    assert 0.5 <= second - first <= 1.0


async def test_retries_give_up_after_max_attempts_with_history(clock: FakeClock) -> None:
    """After max_attempts 503s the job fails with InternalServerError carrying its history."""
    server = Server(
        clock,
        latency=0.0,
        answer=lambda body: error(
            503, "The model is at capacity", code="The service is currently unavailable"
        ),
    )
    async with make_scheduler(
        clock, server, requests_per_second=100, retry=RetryPolicy(max_attempts=3, base_delay=0.1)
    ) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p"))
        await clock.run_until_done(task)
    exc = task.exception()
    assert isinstance(exc, InternalServerError)
    assert exc.attempts == 3
    assert [record.status_code for record in exc.history] == [503, 503, 503]
    assert len(server.sent) == 3


async def test_retry_after_is_honoured_and_pauses_the_whole_pool(clock: FakeClock) -> None:
    """A 429 with retry-after: 2 holds every dispatch for 2 s and retries no sooner."""
    server = Server(clock, latency=0.0)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "2"}))
    async with make_scheduler(
        clock, server, requests_per_second=100, max_concurrency=1
    ) as scheduler:
        first = scheduler.submit_nowait("a")
        await clock.settle()
        second = scheduler.submit_nowait("b")
        await clock.run_until_done(asyncio.gather(first, second))
    assert server.sent[0] == (1000.0, "a")
    later = [t for t, _ in server.sent[1:]]
    assert all(t >= 1002.0 for t in later)
    assert first.result().attempts == 2


async def test_retry_after_beyond_cap_fails_with_rate_limit_error(clock: FakeClock) -> None:
    """A Retry-After longer than max_retry_after fails the job, carrying retry_after."""
    server = Server(clock, latency=0.0)
    server.script.append(error(429, "Rate limit exceeded", headers={"retry-after": "600"}))
    async with make_scheduler(clock, server, requests_per_second=100) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p"))
        await clock.run_until_done(task)
    exc = task.exception()
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == 600.0


async def test_bad_key_fails_every_queued_job_after_one_call(clock: FakeClock) -> None:
    """xAI's 400 incorrect-key stops the run: 50 jobs fail with one request sent."""
    server = Server(
        clock,
        latency=0.0,
        answer=lambda body: error(
            400, "Incorrect API key provided: xa***ef.", code="Client specified an invalid argument"
        ),
    )
    async with make_scheduler(clock, server, requests_per_second=1, max_concurrency=1) as scheduler:
        futures = [scheduler.submit_nowait(f"p{i}") for i in range(50)]
        await clock.run_until_done(asyncio.gather(*futures, return_exceptions=True))
        with pytest.raises(AuthenticationError):
            scheduler.submit_nowait("after")
    assert len(server.sent) == 1
    assert all(isinstance(f.exception(), AuthenticationError) for f in futures)


async def test_billing_exhaustion_is_never_retried(clock: FakeClock) -> None:
    """A 429 about credits is QuotaExhaustedError at once, even with x-should-retry: true."""
    server = Server(clock, latency=0.0)
    server.script.append(
        error(
            429,
            "Your team has either used all available credits or reached its monthly "
            "spending limit.",
            headers={"x-should-retry": "true"},
        )
    )
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p"))
        await clock.run_until_done(task)
    assert isinstance(task.exception(), QuotaExhaustedError)
    assert len(server.sent) == 1


async def test_hung_call_times_out_and_is_retried(clock: FakeClock) -> None:
    """A call that never answers is cut at its timeout and the retry succeeds."""
    server = Server(clock, latency=0.0)
    server.script.append(None)
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p", timeout=5.0))
        await clock.run_until_done(task)
    result = task.result()
    assert result.attempts == 2
    assert server.sent[1][0] - server.sent[0][0] >= 5.0


async def test_timeouts_exhausted_raise_api_timeout_error(clock: FakeClock) -> None:
    """When every attempt hangs, the job ends with APITimeoutError, never pending."""
    server = Server(clock, latency=0.0)
    server.script += [None, None]
    async with make_scheduler(
        clock, server, requests_per_second=10, retry=RetryPolicy(max_attempts=2)
    ) as scheduler:
        task = asyncio.ensure_future(scheduler.submit("p", timeout=1.0))
        await clock.run_until_done(task)
    assert isinstance(task.exception(), APITimeoutError)


async def test_cancelled_submit_leaves_the_queue_unsent(clock: FakeClock) -> None:
    """Cancelling a queued submit removes it: it is never sent and the rest still run."""
    server = Server(clock, latency=0.0)
    async with make_scheduler(clock, server, requests_per_second=1, max_concurrency=1) as scheduler:
        first = scheduler.submit_nowait("first")
        doomed = asyncio.ensure_future(scheduler.submit("doomed"))
        last = scheduler.submit_nowait("last")
        await clock.settle()
        doomed.cancel()
        await clock.run_until_done(asyncio.gather(first, last))
        assert scheduler.statistics().cancelled == 1
    assert server.prompts == ["first", "last"]
    # The cancelled job took no credit: "last" went out one second after "first".
    assert server.sent[1][0] - server.sent[0][0] == pytest.approx(1.0)


async def test_job_too_large_for_the_token_limit_fails_at_once(clock: FakeClock) -> None:
    """A job whose estimate exceeds tokens_per_minute raises RequestTooLargeError at submit."""
    server = Server(clock)
    async with make_scheduler(clock, server, tokens_per_minute=1000) as scheduler:
        with pytest.raises(RequestTooLargeError):
            scheduler.submit_nowait("x" * 100, max_tokens=2000)
    assert server.sent == []


async def test_tokens_per_minute_paces_and_settles_to_real_usage(clock: FakeClock) -> None:
    """Reservations are settled to total_tokens, so small answers free credit for more jobs."""
    server = Server(
        clock, latency=0.0, answer=lambda body: ok("x", prompt_tokens=10, completion_tokens=10)
    )
    # Each job reserves 4+4 prompt + 500 max_tokens but uses only 20 tokens.
    async with make_scheduler(clock, server, tokens_per_minute=6000) as scheduler:
        futures = [scheduler.submit_nowait("abcdefghijklmnop", max_tokens=500) for _ in range(20)]
        await clock.run_until_done(asyncio.gather(*futures))
        stats = scheduler.statistics()
    assert stats.total_tokens == 400
    # Without settlement 20 x 512 tokens would need over a minute; settled, it takes seconds.
    assert server.sent[-1][0] - 1000.0 < 10.0


async def test_deadline_fails_a_job_stuck_in_the_queue(clock: FakeClock) -> None:
    """A queued job whose deadline passes fails with DeadlineExceededError at that moment."""
    server = Server(clock, latency=0.0)
    async with make_scheduler(
        clock, server, requests_per_second=0.1, max_concurrency=1
    ) as scheduler:
        first = scheduler.submit_nowait("first")
        late = scheduler.submit_nowait("late", deadline=3.0)
        await clock.advance(3.5)
        assert isinstance(late.exception(), DeadlineExceededError)
        await clock.run_until_done(first)
    assert server.prompts == ["first"]


async def test_close_drains_then_refuses_new_work(clock: FakeClock) -> None:
    """aclose() finishes queued jobs; submit afterwards raises SchedulerClosedError."""
    server = Server(clock, latency=0.5)
    scheduler = make_scheduler(clock, server, requests_per_second=5)
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"p{i}") for i in range(8)]
    closing = asyncio.ensure_future(scheduler.aclose())
    await clock.run_until_done(closing)
    assert all(f.result().text.startswith("p") for f in futures)
    with pytest.raises(SchedulerClosedError):
        scheduler.submit_nowait("late")


async def test_close_with_cancel_fails_queued_jobs(clock: FakeClock) -> None:
    """aclose(cancel=True) resolves every queued job with SchedulerClosedError at once."""
    server = Server(clock, latency=0.5)
    scheduler = make_scheduler(clock, server, requests_per_second=1, max_concurrency=1)
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"p{i}") for i in range(5)]
    await clock.settle()
    await scheduler.aclose(cancel=True)
    assert all(isinstance(f.exception(), SchedulerClosedError) for f in futures)


@pytest.mark.parametrize(
    ("prompt", "options"),
    [
        ("", {}),
        ("   ", {}),
        ([], {}),
        ([{"content": "no role"}], {}),
        (b"bytes", {}),
        ("ok", {"max_tokens": 0}),
        ("ok", {"max_tokens": -5}),
        ("ok", {"max_tokens": 10**9}),
        ("ok", {"priority": "high"}),
        ("ok", {"priority": 1.5}),
        ("ok", {"timeout": -1.0}),
        ("ok", {"temperature": float("nan")}),
        ("ok", {"endpoint": "embeddings"}),
    ],
)
async def test_bad_input_raises_invalid_job_error(
    clock: FakeClock, prompt: object, options: dict[str, object]
) -> None:
    """Bad submit arguments raise InvalidJobError (a ValueError) before anything is queued."""
    server = Server(clock)
    async with make_scheduler(clock, server) as scheduler:
        with pytest.raises(InvalidJobError):
            scheduler.submit_nowait(prompt, **options)  # type: ignore[arg-type]
        assert scheduler.statistics().queued == 0


async def test_api_key_never_in_repr(clock: FakeClock) -> None:
    """Neither the scheduler's repr nor its transport's shows the API key."""
    from grok_scheduler import AiohttpTransport, Scheduler

    scheduler = Scheduler(api_key=TEST_KEY, base_url="http://127.0.0.1:1/v1")
    transport = AiohttpTransport(base_url="http://x/v1", api_key=TEST_KEY, max_connections=1)
    assert TEST_KEY not in repr(scheduler)
    assert TEST_KEY not in repr(transport)
    assert TEST_KEY[4:] not in repr(vars(scheduler) if hasattr(scheduler, "__dict__") else "")


async def test_a_finished_job_leaves_no_deadline_timer(clock: FakeClock) -> None:
    """A job that ends before its deadline cancels its deadline timer (nothing stays alive)."""
    server = Server(clock, latency=0.1)
    async with make_scheduler(clock, server, requests_per_second=10) as scheduler:
        future = scheduler.submit_nowait("p", deadline=3600.0)
        await clock.run_until_done(future)
        assert future.result().text == "p"
        pending = clock.next_deadline()
        assert pending is None or pending < clock.now() + 3000.0
