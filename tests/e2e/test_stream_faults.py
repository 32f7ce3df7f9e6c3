"""Scheduler.stream over real sockets against the simulator, with faults inside streams."""

from __future__ import annotations

import pytest

from grok_scheduler import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    RetryPolicy,
    Scheduler,
)
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-streamTESTkey0123456789abcdef"
PROMPT = "tell me about the sea and the sky today"


def scheduler_for(sim: Simulator) -> Scheduler:
    # Short backoffs: these tests are about what is retried, not how long it waits.
    return Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        model="grok-4.3",
        retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
    )


async def test_stream_matches_submit_over_sockets() -> None:
    """The streamed Result has the same text, usage and finish reason as a submitted one."""
    async with Simulator(SimulatorConfig(api_key=KEY)) as sim, scheduler_for(sim) as scheduler:
        async with scheduler.stream(PROMPT, max_tokens=64) as stream:
            texts = [chunk.text async for chunk in stream]
        submitted = await scheduler.submit(PROMPT, max_tokens=64)
    assert "".join(texts) == stream.result.text == submitted.text
    assert stream.result.usage == submitted.usage
    assert stream.result.finish_reason == submitted.finish_reason


@pytest.mark.parametrize("kind", ["stream_error_first", "stream_reset_mid", "stream_no_done"])
async def test_faults_before_a_complete_answer_are_retried_or_typed(kind: str) -> None:
    """An error frame first is retried; a cut or unfinished stream fails typed after chunks."""
    async with Simulator(SimulatorConfig(api_key=KEY)) as sim, scheduler_for(sim) as scheduler:
        sim.fail_next(kind)
        stream = scheduler.stream(PROMPT)
        if kind == "stream_error_first":
            async with stream:
                _ = [chunk async for chunk in stream]
            assert stream.result.attempts == 2
        else:
            with pytest.raises(APIConnectionError) as caught:
                _ = [chunk async for chunk in stream]
            assert caught.value.partial_text.startswith("Simulated")


async def test_error_frame_mid_stream_is_typed() -> None:
    """An Internal error frame after deltas raises InternalServerError with the partial text."""
    async with Simulator(SimulatorConfig(api_key=KEY)) as sim, scheduler_for(sim) as scheduler:
        sim.fail_next("stream_error_mid")
        stream = scheduler.stream(PROMPT)
        with pytest.raises(InternalServerError) as caught:
            _ = [chunk async for chunk in stream]
    assert caught.value.partial_text.startswith("Simulated")


async def test_hang_mid_stream_is_cut_at_the_gap_floor() -> None:
    """After a few healthy streams, a stream gone silent mid-way is cut (the floor: 2 s)."""
    config = SimulatorConfig(api_key=KEY, hang_seconds=60.0)
    async with Simulator(config) as sim, scheduler_for(sim) as scheduler:
        for _ in range(3):
            async with scheduler.stream(PROMPT) as stream:
                _ = [chunk async for chunk in stream]
        sim.fail_next("stream_hang_mid")
        stream = scheduler.stream(PROMPT)
        with pytest.raises(APITimeoutError):
            _ = [chunk async for chunk in stream]
