"""Every fault the simulator can inject, alone and mixed, through real sockets.

For each: every submitted job ends (a Result or a typed SchedulerError), none hangs (the test is
bounded by ``asyncio.timeout``), none ends twice, and the scheduler serves new work afterwards;
after a fault that fails every job (bad key, billing) it refuses new work at once, same type.
The circuit breaker gets a short cooldown: an open breaker delays work by design, not a hang.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

import pytest
from conftest import SimulatorFactory
from structlog.testing import capture_logs

from grok_scheduler import (
    AuthenticationError,
    BreakerPolicy,
    QuotaExhaustedError,
    Result,
    RetryPolicy,
    Scheduler,
    SchedulerError,
)
from grok_scheduler.simulator import FAULT_KINDS, Simulator, SimulatorConfig

KEY = "xai-faultINJECTIONkey0123456789abcdef"
FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.04, max_attempts=4)
FAST_BREAKER = BreakerPolicy(cooldown=0.05, max_cooldown=0.2)
CALL_TIMEOUT = 0.25  # a hung call is given up after this
JOBS = 12
FATAL = {"bad_key": AuthenticationError, "billing": QuotaExhaustedError}
MIXES: list[dict[str, float]] = [
    {"500": 0.2, "reset": 0.2, "malformed": 0.2},
    {"hang": 0.1, "503": 0.2, "no_choices": 0.1, "502_html": 0.1, "empty_body_500": 0.1},
    {kind: 0.06 for kind in sorted(FAULT_KINDS - set(FATAL))},
    {"capacity_429": 0.3, "capacity_422": 0.2, "grammar": 0.1, "reset": 0.1},
    {"billing": 0.1, "503": 0.2, "hang": 0.05, "malformed": 0.1},
]


async def _run_batch(scheduler: Scheduler, jobs: int, prefix: str) -> list[Result | BaseException]:
    """Submit ``jobs`` jobs and wait for all; fail the test, naming the hung ones, after 20 s."""
    futures = [
        scheduler.submit_nowait(f"{prefix} {i}", max_tokens=16, timeout=CALL_TIMEOUT)
        for i in range(jobs)
    ]
    try:
        async with asyncio.timeout(20):
            return await asyncio.gather(*futures, return_exceptions=True)
    except TimeoutError:
        pending = sum(1 for f in futures if not f.done())
        pytest.fail(f"{pending} jobs hung: {scheduler!r} {scheduler.statistics()!r}")


def _check_ended_once(
    scheduler: Scheduler, outcomes: list[Result | BaseException], jobs: int
) -> Counter[str]:
    """Each job ended with a Result or a typed error, and the scheduler ended each exactly once.

    A future resolves only once (a second ``set_result`` raises, and the scheduler checks
    ``done()`` first), so counting its done-callbacks proves nothing. What a second ending does
    leave behind is the scheduler's own count: a job that completed and then also failed (or
    failed twice) makes ``completed + failed`` exceed the jobs, or the counts by type disagree
    with the errors the callers actually received.
    """
    assert len(outcomes) == jobs
    kinds: Counter[str] = Counter()
    for outcome in outcomes:
        assert isinstance(outcome, Result | SchedulerError), repr(outcome)
        kinds[type(outcome).__name__] += 1
    errors = {name: count for name, count in kinds.items() if name != "Result"}
    stats = scheduler.statistics()
    assert stats.submitted == jobs
    assert (stats.completed, stats.failed, stats.cancelled) == (
        kinds["Result"],
        jobs - kinds["Result"],
        0,
    )
    assert stats.failures_by_type == errors
    assert stats.queued == 0
    assert stats.in_flight == 0
    return kinds


async def _fresh_work_succeeds(scheduler: Scheduler, sim: Simulator) -> None:
    sim.config.faults = {}
    async with asyncio.timeout(10):
        results = await asyncio.gather(
            *(scheduler.submit(f"after {i}", max_tokens=16, timeout=5.0) for i in range(4))
        )
    assert all(isinstance(r, Result) and r.text for r in results)


def _no_internal_errors(logs: list[MutableMapping[str, Any]]) -> None:
    bad = [e for e in logs if e.get("event") == "grok_scheduler.internal_error"]
    assert not bad, bad


def _config(**faults: float) -> SimulatorConfig:
    return SimulatorConfig(
        latency=0.0, requests_per_second=None, faults=dict(faults), hang_seconds=30.0, seed=7
    )


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS - set(FATAL)))
async def test_every_job_ends_once_under_each_transient_or_permanent_fault(
    make_simulator: SimulatorFactory, kind: str
) -> None:
    """Half the calls fail with the fault: all jobs end once, typed, and new work then succeeds."""
    sim = await make_simulator(_config(**{kind: 0.5}))
    with capture_logs() as logs:
        async with Scheduler(
            api_key=KEY,
            base_url=sim.base_url,
            max_concurrency=4,
            retry=FAST_RETRY,
            breaker=FAST_BREAKER,
        ) as scheduler:
            outcomes = await _run_batch(scheduler, JOBS, kind)
            _check_ended_once(scheduler, outcomes, JOBS)
            await _fresh_work_succeeds(scheduler, sim)
            stats = scheduler.statistics()
    assert sim.stats.faults.get(kind, 0) > 0
    assert stats.in_flight == 0
    assert stats.completed + stats.failed == stats.submitted
    _no_internal_errors(logs)


@pytest.mark.parametrize("kind", sorted(FATAL))
async def test_a_fault_that_fails_every_job_stops_the_run_and_refuses_new_work(
    make_simulator: SimulatorFactory, kind: str
) -> None:
    """After a bad key or exhausted billing, every job ends with that type and submit refuses."""
    sim = await make_simulator(_config())
    sim.fail_next(kind)
    error_type = FATAL[kind]
    with capture_logs() as logs:
        async with Scheduler(
            api_key=KEY,
            base_url=sim.base_url,
            max_concurrency=1,
            retry=FAST_RETRY,
            breaker=FAST_BREAKER,
        ) as scheduler:
            outcomes = await _run_batch(scheduler, JOBS, kind)
            kinds = _check_ended_once(scheduler, outcomes, JOBS)
            assert isinstance(outcomes[0], error_type)
            assert kinds[error_type.__name__] == JOBS - kinds["Result"]
            sent = sim.stats.requests
            # "At once" without a stopwatch (a wall-clock bound fails on a loaded machine):
            # submit_nowait refuses synchronously, before any await, and nothing is sent.
            with pytest.raises(error_type):
                scheduler.submit_nowait("one more", max_tokens=16)
            with pytest.raises(error_type):
                await scheduler.submit("one more", max_tokens=16)
            assert sim.stats.requests == sent
    assert sim.stats.faults[kind] == 1
    _no_internal_errors(logs)


@pytest.mark.parametrize("mix", MIXES, ids=lambda mix: "+".join(sorted(mix)))
async def test_every_job_ends_once_under_a_mix_of_faults(
    make_simulator: SimulatorFactory, mix: dict[str, float]
) -> None:
    """Mixed faults: every job ends once with a result or typed error; no internal errors."""
    sim = await make_simulator(_config(**mix))
    with capture_logs() as logs:
        async with Scheduler(
            api_key=KEY,
            base_url=sim.base_url,
            max_concurrency=6,
            retry=FAST_RETRY,
            breaker=FAST_BREAKER,
        ) as scheduler:
            outcomes = await _run_batch(scheduler, 3 * JOBS, "mix")
            kinds = _check_ended_once(scheduler, outcomes, 3 * JOBS)
            if "billing" in mix and kinds["QuotaExhaustedError"]:
                with pytest.raises(QuotaExhaustedError):
                    await scheduler.submit("one more", max_tokens=16)
            else:
                await _fresh_work_succeeds(scheduler, sim)
            assert scheduler.statistics().in_flight == 0
    assert sum(sim.stats.faults.values()) > 0
    _no_internal_errors(logs)


async def test_a_call_hung_past_its_timeout_is_retried_and_the_job_ends(
    make_simulator: SimulatorFactory,
) -> None:
    """Two hangs in a row cost two timeouts; the third attempt succeeds within the bound."""
    sim = await make_simulator(_config())
    sim.fail_next("hang", 2)
    async with Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        max_concurrency=2,
        retry=FAST_RETRY,
        breaker=FAST_BREAKER,
    ) as scheduler:
        async with asyncio.timeout(5):  # each hang lasts 30 s: only the call timeout ends it
            result = await scheduler.submit("slow", max_tokens=16, timeout=CALL_TIMEOUT)
    # Both hangs were served and cut, and every attempt reached the server. Not "exactly 3":
    # on a loaded machine a healthy local call can outlast 0.25 s too, and retrying it is
    # right, so the count of attempts is what the server saw, at least the two hangs + one.
    assert sim.stats.faults == {"hang": 2}
    assert result.attempts == sim.stats.requests >= 3
    assert result.in_flight_seconds >= 2 * CALL_TIMEOUT


async def test_closing_while_calls_hang_ends_every_job(make_simulator: SimulatorFactory) -> None:
    """aclose(cancel=True) with calls stuck on the wire ends every job with a typed error."""
    sim = await make_simulator(_config(hang=1.0))
    scheduler = Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        max_concurrency=3,
        retry=FAST_RETRY,
        breaker=FAST_BREAKER,
    )
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"stuck {i}", timeout=30.0) for i in range(6)]
    # Wait until three calls are really on the wire (a fixed sleep may be too short under load).
    async with asyncio.timeout(10):
        while sim.stats.in_flight < 3:  # noqa: ASYNC110 (a real server: nothing to await)
            await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        await scheduler.aclose(cancel=True)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(o, SchedulerError) for o in outcomes), outcomes
