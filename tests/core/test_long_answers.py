"""Long answers are not cut and bought again (issue 13, item 3), in virtual time.

After a few quick calls the learned per-call timeout is about 40 s for a 1,000-token answer.
A 121 s, 6,000-token answer must still arrive: a job without ``max_tokens`` is bounded as if it
may use the model's context, and a timeout that fired is doubled for the job's next attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import TEST_KEY, ok

from grok_scheduler import FakeClock, MockTransport, RetryPolicy, Scheduler, TransportResponse
from grok_scheduler._guards._timeouts import UNBOUNDED_ANSWER_TOKENS, CallTimeouts

_WARM_UP_CALLS = 8
_QUICK_SECONDS = 2.0
_QUICK_TOKENS = 100  # 0.02 s per token: the bound for 1,000 tokens is 2*(2+0.02*900)+1 s
_LONG_SECONDS = 121.0
_LONG_TOKENS = 6_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


class _SlowAnswers:
    """Quick answers for the warm-up, then a 121 s, 6,000-token answer for "long"."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.long_calls = 0

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = body["messages"][-1]["content"]
        if prompt == "long":
            self.long_calls += 1
            await self.clock.sleep(_LONG_SECONDS)
            return ok("a long answer", completion_tokens=_LONG_TOKENS)
        await self.clock.sleep(_QUICK_SECONDS)
        return ok(prompt, completion_tokens=_QUICK_TOKENS)


async def _long_answer(clock: FakeClock, max_tokens: int | None) -> tuple[Any, _SlowAnswers]:
    server = _SlowAnswers(clock)
    async with Scheduler(
        api_key=TEST_KEY,
        clock=clock,
        transport=MockTransport(server, clock=clock),
        max_concurrency=4,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    ) as scheduler:
        for i in range(_WARM_UP_CALLS):
            await clock.run_until_done(scheduler.submit_nowait(f"warm-{i}"))
        future = scheduler.submit_nowait("long", max_tokens=max_tokens)
        waiter = asyncio.ensure_future(asyncio.wait({future}))
        await clock.run_until_done(waiter, limit=3600.0)
        return future, server


async def test_an_answer_without_max_tokens_is_not_cut_at_a_small_default(
    clock: FakeClock,
) -> None:
    """No max_tokens: the 121 s answer arrives on the first attempt (today: 8 billed timeouts)."""
    future, server = await _long_answer(clock, None)
    result = future.result()
    assert result.usage.completion_tokens == _LONG_TOKENS
    assert result.attempts == 1
    assert server.long_calls == 1


async def test_a_timeout_that_fired_is_doubled_for_the_next_attempt(clock: FakeClock) -> None:
    """max_tokens=1000 predicts 41 s: tries at 41 s and 82 s time out, the third (164 s) is
    long enough for the 121 s answer. With the bound repeated unchanged it never would be."""
    future, server = await _long_answer(clock, 1000)
    result = future.result()
    assert _learned(1000) == pytest.approx(41.0)
    assert result.attempts == 3
    assert server.long_calls == 3
    # Given up at the learned bound, then at twice it; the third ran to the end.
    assert result.in_flight_seconds == pytest.approx(3 * _learned(1000) + _LONG_SECONDS)


def _learned(max_tokens: int) -> float:
    """The bound the warm-up teaches for ``max_tokens``."""
    timeouts = CallTimeouts()
    for _ in range(_WARM_UP_CALLS):
        timeouts.observe(_QUICK_SECONDS, _QUICK_TOKENS)
    return timeouts.timeout_for(max_tokens)


# The quick calls (2 s, 100 tokens) cover answers up to 100 tokens; beyond them each token is
# given the median 0.02 s per token. slack 2, floor 1 (the rule of _guards/_timeouts.py).
_BOUND_1024 = 2 * (2.0 + 0.02 * (1024 - 100)) + 1


@pytest.mark.parametrize(
    ("max_tokens", "timed_out", "expected"),
    [
        (1024, 0, _BOUND_1024),
        (1024, 1, 2 * _BOUND_1024),
        (1024, 2, 4 * _BOUND_1024),
        (1024, 5, 900.0),  # never above the maximum
        (1024, 10_000, 900.0),
        (None, 0, 900.0),  # the context's worth of tokens: the maximum
        (10, 0, 2 * 2.0 + 1),  # answers of the size seen: the slow call, nothing extrapolated
    ],
)
def test_the_learned_bound_table(max_tokens: int | None, timed_out: int, expected: float) -> None:
    """The learned bound per max_tokens and earlier timeouts: doubled each time, clamped."""
    timeouts = CallTimeouts()
    for _ in range(_WARM_UP_CALLS):
        timeouts.observe(_QUICK_SECONDS, _QUICK_TOKENS)
    assert timeouts.timeout_for(max_tokens, timed_out=timed_out) == pytest.approx(expected)


def test_without_max_tokens_a_fast_model_still_gets_room_for_its_whole_context() -> None:
    """No max_tokens on a very fast model: bounded by the context's tokens, not by 1,024."""
    timeouts = CallTimeouts()
    for _ in range(_WARM_UP_CALLS):
        timeouts.observe(0.5, 1000)  # 0.5 ms per token
    expected = 2 * (0.5 + 0.0005 * (UNBOUNDED_ANSWER_TOKENS - 1000)) + 1
    assert timeouts.timeout_for(None) == pytest.approx(expected)
    assert timeouts.timeout_for(None) > timeouts.timeout_for(1024)
