"""Issue 13 item 10c: only the half-open probe decides the breaker, not a late answer.

A call in flight when the breaker opened may answer long after the cooldown, while the probe is
still out. Its answer is about the server as it was, so it must neither close the breaker (a
success) nor reopen it with a doubled cooldown (a failure): the probe's own result decides.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import error, make_scheduler, ok

from grok_scheduler import BreakerPolicy, FakeClock, RetryPolicy, TransportResponse
from grok_scheduler._guards._breaker import CircuitBreaker

POLICY = BreakerPolicy(min_calls=3, failure_ratio=0.5, cooldown=5.0, max_cooldown=60.0)
ONCE = RetryPolicy(max_attempts=1, total_timeout=None)


def _opened_at_one() -> CircuitBreaker:
    """A breaker opened by three failures at t=1; its probe went out at t=6."""
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        breaker.record(False, 1.0, sent_at=0.9)
    assert breaker.state == "open"
    assert breaker.delay(6.0) == 0.0  # the probe
    assert breaker.state == "half_open"
    return breaker


@pytest.mark.parametrize("late_ok", [True, False])
def test_a_late_answer_sent_before_opening_decides_nothing(late_ok: bool) -> None:
    """A call sent at t=0.5 answering at t=8 leaves the breaker half-open, cooldown unchanged."""
    breaker = _opened_at_one()
    breaker.record(late_ok, 8.0, sent_at=0.5)
    assert breaker.state == "half_open"
    assert breaker.cooldown == 5.0
    assert breaker.delay(8.0) == pytest.approx(3.0)  # the probe is still out


@pytest.mark.parametrize(("probe_ok", "after"), [(True, "closed"), (False, "open")])
def test_the_probe_itself_decides(probe_ok: bool, after: str) -> None:
    """The probe sent at t=6 closes the breaker, or reopens it with the cooldown doubled."""
    breaker = _opened_at_one()
    breaker.record(not probe_ok, 8.0, sent_at=0.5)
    breaker.record(probe_ok, 9.0, sent_at=6.0)
    assert breaker.state == after
    assert breaker.cooldown == (5.0 if probe_ok else 10.0)


def _server(clock: FakeClock, slow_ok: bool, probe_ok: bool) -> Any:
    """'slow' answers after 20 s, 'probe' after 30 s, 'fail …' at once with a 503."""

    async def handle(path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = str(body["messages"][-1]["content"])
        if prompt == "slow":
            await clock.sleep(20.0)
            return ok("late") if slow_ok else error(503, "The model is at capacity")
        if prompt == "probe":
            await clock.sleep(30.0)
            return ok("probe") if probe_ok else error(503, "The model is at capacity")
        return error(503, "The model is at capacity")

    return handle


@pytest.mark.parametrize(
    ("slow_ok", "probe_ok"), [(True, False), (False, True), (True, True), (False, False)]
)
async def test_the_scheduler_lets_only_the_probe_decide(slow_ok: bool, probe_ok: bool) -> None:
    """Through the scheduler: the slow call's late answer at 20 s leaves it half-open; the
    probe's answer at 35 s decides."""
    clock = FakeClock()
    server = _server(clock, slow_ok, probe_ok)
    async with make_scheduler(
        clock,
        server,  # type: ignore[arg-type]
        requests_per_second=100,
        retry=ONCE,
        breaker=POLICY,
        timeout=100.0,
    ) as scheduler:
        # The first call goes alone (first contact), so the slow one is second, in parallel.
        failing = [scheduler.submit_nowait("fail 0")]
        slow = scheduler.submit_nowait("slow")
        failing += [scheduler.submit_nowait(f"fail {i}") for i in (1, 2)]
        await clock.advance(1.0)
        assert scheduler.statistics().breaker_state == "open"
        probe = scheduler.submit_nowait("probe")
        await clock.advance(20.0)  # t=21: the probe went at t~5, the slow call answered at t~20
        assert slow.done()
        assert not probe.done()
        assert scheduler.statistics().breaker_state == "half_open"
        await clock.advance(15.0)  # t=36: the probe answered at t~35
        assert probe.done()
        assert scheduler.statistics().breaker_state == ("closed" if probe_ok else "open")
        await asyncio.gather(slow, probe, *failing, return_exceptions=True)
