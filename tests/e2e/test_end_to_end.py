"""The whole path for real: Scheduler -> aiohttp over a socket -> the local xAI simulator."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
import structlog
from conftest import SimulatorFactory

from grok_scheduler import (
    AuthenticationError,
    BreakerPolicy,
    Endpoint,
    InternalServerError,
    Priority,
    QuotaExhaustedError,
    RetryPolicy,
    Scheduler,
)
from grok_scheduler.simulator import SimulatorConfig

KEY = "xai-e2eSECRETkey0123456789ABCDEFGH"
FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=6)


async def test_chat_and_responses_endpoints_return_text_and_usage(
    make_simulator: SimulatorFactory,
) -> None:
    """Both endpoints answer through real sockets with text that echoes the prompt, and usage."""
    sim = await make_simulator(
        SimulatorConfig(latency=0.0, requests_per_second=None, reasoning_tokens=3)
    )
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=4) as scheduler:
        chat = await scheduler.submit("Explain GCRA in one line", max_tokens=50)
        responses = await scheduler.submit(
            "Name a prime", endpoint=Endpoint.RESPONSES, max_tokens=20
        )
    assert "Explain GCRA" in chat.text
    assert chat.usage.reasoning_tokens == 3
    assert chat.usage.total_tokens == (
        chat.usage.prompt_tokens + chat.usage.completion_tokens + chat.usage.reasoning_tokens
    )
    assert chat.request_id
    assert "Name a prime" in responses.text
    assert responses.usage.total_tokens > 0


async def test_rate_limit_is_respected_without_429s(make_simulator: SimulatorFactory) -> None:
    """With the right limits configured, 40 jobs at 20 rps meet no 429 and keep under the limit."""
    sim = await make_simulator(SimulatorConfig(latency=0.01, requests_per_second=20))
    async with Scheduler(
        api_key=KEY, base_url=sim.base_url, requests_per_second=20, max_concurrency=16
    ) as scheduler:
        results = await asyncio.gather(*(scheduler.submit(f"job {i}") for i in range(40)))
    assert len(results) == 40
    assert sim.stats.rate_limited == 0
    assert sim.stats.accepted == 40


async def test_limits_too_high_are_corrected_by_openai_headers(
    make_simulator: SimulatorFactory,
) -> None:
    """Configured 4x too high against a server whose headers count per second: all succeed."""
    sim = await make_simulator(
        SimulatorConfig(latency=0.0, requests_per_second=10, headers="openai-1s")
    )
    async with Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        requests_per_second=40,
        max_concurrency=8,
        retry=FAST_RETRY,
    ) as scheduler:
        results = await asyncio.gather(*(scheduler.submit(f"job {i}") for i in range(30)))
        learned = scheduler.statistics().limiter
    assert all(r.text for r in results)
    assert learned is not None and learned.requests_per_second == pytest.approx(10)


async def test_transient_faults_are_retried_to_success(make_simulator: SimulatorFactory) -> None:
    """500s, 503s, resets and malformed bodies are retried; every job ends in a result."""
    sim = await make_simulator(
        SimulatorConfig(
            latency=0.0,
            requests_per_second=None,
            faults={"500": 0.1, "503": 0.1, "reset": 0.1, "malformed": 0.05, "502_html": 0.05},
            seed=7,
        )
    )
    async with Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        max_concurrency=8,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=12),
        # 35% faults on purpose: this test is about retries, not the circuit breaker.
        breaker=BreakerPolicy(failure_ratio=0.95),
    ) as scheduler:
        results = await asyncio.gather(*(scheduler.submit(f"job {i}") for i in range(60)))
    assert [f"job {i}" in r.text for i, r in enumerate(results)] == [True] * 60
    assert sum(sim.stats.faults.values()) > 0
    assert any(r.attempts > 1 for r in results)


async def test_hang_is_cut_by_the_call_timeout(make_simulator: SimulatorFactory) -> None:
    """A hung request is abandoned at its timeout and retried; the job still succeeds."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    sim.fail_next("hang")
    async with Scheduler(
        api_key=KEY, base_url=sim.base_url, max_concurrency=2, retry=FAST_RETRY
    ) as scheduler:
        async with asyncio.timeout(10):  # the hang lasts an hour: only the call timeout ends it
            result = await scheduler.submit("hello", timeout=0.3)
    # The hang was served and cut, and every attempt reached the server. Not "exactly 2": on a
    # loaded machine a healthy local call can outlast 0.3 s too, and retrying it is right.
    assert sim.stats.faults == {"hang": 1}
    assert result.attempts == sim.stats.requests >= 2
    assert result.in_flight_seconds >= 0.3


async def test_wrong_key_stops_the_run_after_one_call(make_simulator: SimulatorFactory) -> None:
    """A wrong key (xAI answers 400) fails 200 queued jobs after a single request."""
    sim = await make_simulator(
        SimulatorConfig(
            latency=0.0, requests_per_second=None, api_key="xai-the-right-key-000000000"
        )
    )
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=1) as scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(200)]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert sim.stats.requests == 1
    assert KEY not in str(outcomes[0]) and KEY not in repr(outcomes[0].body)  # type: ignore[union-attr]


async def test_billing_exhaustion_is_fatal_and_not_retried(
    make_simulator: SimulatorFactory,
) -> None:
    """The billing-exhaustion 429 fails with QuotaExhaustedError after one call."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    sim.fail_next("billing", 5)
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=1) as scheduler:
        with pytest.raises(QuotaExhaustedError):
            await scheduler.submit("job")
    assert sim.stats.requests == 1


async def test_grammar_too_complex_is_fatal(make_simulator: SimulatorFactory) -> None:
    """The 503 'Grammar is too complex.' is not retried."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    sim.fail_next("grammar")
    async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=1) as scheduler:
        with pytest.raises(InternalServerError, match="Grammar"):
            await scheduler.submit("job")
    assert sim.stats.requests == 1


async def test_priorities_hold_against_a_real_rate_limit(make_simulator: SimulatorFactory) -> None:
    """Under a real 10 rps limit, HIGH jobs submitted behind 30 LOW jobs finish first."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=10))
    async with Scheduler(
        api_key=KEY, base_url=sim.base_url, requests_per_second=10, max_concurrency=4
    ) as scheduler:
        low = [scheduler.submit_nowait(f"low {i}", priority=Priority.LOW) for i in range(30)]
        await asyncio.sleep(0.05)
        high = [scheduler.submit_nowait(f"high {i}", priority=Priority.HIGH) for i in range(5)]
        done_high = await asyncio.gather(*high)
        low_done_when_high_done = sum(f.done() for f in low)
        await asyncio.gather(*low)
    assert len(done_high) == 5
    assert low_done_when_high_done < 20


async def test_api_key_never_logged_at_debug(make_simulator: SimulatorFactory) -> None:
    """With structlog at debug and every failure kind, the key appears in no log line."""
    sim = await make_simulator(
        SimulatorConfig(latency=0.0, requests_per_second=None, api_key="xai-other-key-000000000000")
    )
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    try:
        async with Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=1) as scheduler:
            with pytest.raises(AuthenticationError) as caught:
                await scheduler.submit("job")
            text = repr(scheduler) + str(scheduler.statistics())
    finally:
        structlog.reset_defaults()
    logged = stream.getvalue()
    assert "grok_scheduler.failed" in logged
    for haystack in (logged, text, str(caught.value), repr(caught.value)):
        assert KEY not in haystack
        assert KEY[4:20] not in haystack


async def test_job_events_are_logged_when_asked(make_simulator: SimulatorFactory) -> None:
    """With log_jobs=True each job logs submitted, dispatched and completed, without the key."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    try:
        async with Scheduler(api_key=KEY, base_url=sim.base_url, log_jobs=True) as scheduler:
            await scheduler.submit("job")
    finally:
        structlog.reset_defaults()
    logged = stream.getvalue()
    for event in ("submitted", "dispatched", "completed"):
        assert f"grok_scheduler.{event}" in logged
    assert KEY not in logged
