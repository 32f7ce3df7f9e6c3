"""Scheduler(stream_on_wire=True): submit streams on the wire and returns what it always did."""

from __future__ import annotations

import dataclasses

import pytest

from grok_scheduler import Result, RetryPolicy, Scheduler
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-wireTESTkey0123456789abcdef00"
PROMPT = "tell me about the sea and the sky today"
# What may differ between two calls of the same prompt: ids, timings and the body's framing.
_PER_CALL = {"request_id", "queued_seconds", "in_flight_seconds", "body", "raw_body"}


def scheduler_for(sim: Simulator, *, stream_on_wire: bool) -> Scheduler:
    return Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        model="grok-4.3",
        retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        stream_on_wire=stream_on_wire,
    )


def _comparable(result: Result) -> dict[str, object]:
    fields = dataclasses.fields(result)
    return {f.name: getattr(result, f.name) for f in fields if f.name not in _PER_CALL}


@pytest.mark.parametrize("max_tokens", [64, 3])
async def test_a_streamed_submit_returns_the_same_result(max_tokens: int) -> None:
    """Text, usage, model, finish reason and attempts equal a non-streamed submit's."""
    async with Simulator(SimulatorConfig(api_key=KEY)) as sim:
        async with scheduler_for(sim, stream_on_wire=False) as plain:
            expected = await plain.submit(PROMPT, max_tokens=max_tokens)
        async with scheduler_for(sim, stream_on_wire=True) as wired:
            streamed = await wired.submit(PROMPT, max_tokens=max_tokens)
    assert _comparable(streamed) == _comparable(expected)
    assert streamed.usage.total_tokens > 0
    assert streamed.request_id is not None


@pytest.mark.parametrize("kind", ["stream_reset_mid", "stream_error_mid", "stream_no_done"])
async def test_a_fault_mid_stream_is_retried_transparently(kind: str) -> None:
    """Nobody read the chunks of a submitted job: a broken stream is simply sent again."""
    async with (
        Simulator(SimulatorConfig(api_key=KEY)) as sim,
        scheduler_for(sim, stream_on_wire=True) as scheduler,
    ):
        sim.fail_next(kind)
        result = await scheduler.submit(PROMPT)
    assert result.attempts == 2
    assert result.text.startswith("Simulated")


async def test_a_hang_mid_stream_is_cut_at_the_gap_floor_and_retried() -> None:
    """After a few healthy calls a submitted call gone silent is cut (2 s) and sent again."""
    config = SimulatorConfig(api_key=KEY, hang_seconds=60.0)
    async with Simulator(config) as sim, scheduler_for(sim, stream_on_wire=True) as scheduler:
        for _ in range(3):
            await scheduler.submit(PROMPT)
        sim.fail_next("stream_hang_mid")
        result = await scheduler.submit(PROMPT)
    assert result.attempts == 2
    assert result.in_flight_seconds < 10.0
