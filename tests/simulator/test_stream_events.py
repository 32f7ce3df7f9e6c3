"""The simulator's streams: /v1/responses with stream=true, and stream faults in virtual time."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp
import pytest

from grok_scheduler import (
    APIConnectionError,
    APITimeoutError,
    FakeClock,
    InternalServerError,
    RetryPolicy,
    Scheduler,
)
from grok_scheduler._transports._streaming import MockStream, MockStreamTransport
from grok_scheduler.simulator import Simulator, SimulatorConfig, VirtualServer

KEY = "xai-simSTREAMkey0123456789abcdef0"
PROMPT = "tell me about the sea and the sky today"


def _events(raw: bytes) -> list[dict[str, Any]]:
    blocks = [block for block in raw.decode().split("\n\n") if block.strip()]
    events = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        event = json.loads(fields["data"])
        assert fields["event"] == event["type"]
        events.append(event)
    return events


@pytest.mark.parametrize("max_output_tokens", [None, 3])
async def test_responses_stream_ends_with_the_non_streamed_response(
    max_output_tokens: int | None,
) -> None:
    """Typed events, one text delta per word, and a final event holding the whole response."""
    body: dict[str, Any] = {"model": "grok-4", "input": PROMPT}
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    headers = {"Authorization": f"Bearer {KEY}"}
    async with Simulator(SimulatorConfig(latency=0.0)) as sim, aiohttp.ClientSession() as http:
        url = f"{sim.base_url}/responses"
        async with http.post(url, json={**body, "stream": True}, headers=headers) as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = _events(await reply.read())
        async with http.post(url, json=body, headers=headers) as reply:
            plain = await reply.json()
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    last = "response.incomplete" if max_output_tokens else "response.completed"
    assert kinds[-1] == last
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    final = events[-1]["response"]
    assert "".join(deltas) == final["output"][-1]["content"][0]["text"]
    # The same answer as stream=false, but for the per-call id and clock.
    for name in ("id", "created_at"):
        final.pop(name)
        plain.pop(name)
    final["output"] = [{k: v for k, v in item.items() if k != "id"} for item in final["output"]]
    plain["output"] = [{k: v for k, v in item.items() if k != "id"} for item in plain["output"]]
    assert final == plain


async def test_scheduler_streams_responses_over_sockets() -> None:
    """Scheduler.stream on endpoint="responses" reads the simulator's stream: same as submit."""
    async with (
        Simulator(SimulatorConfig(api_key=KEY, latency=0.0)) as sim,
        Scheduler(api_key=KEY, base_url=sim.base_url, endpoint="responses") as scheduler,
    ):
        async with scheduler.stream(PROMPT) as stream:
            texts = [chunk.text async for chunk in stream]
        submitted = await scheduler.submit(PROMPT)
    assert "".join(texts) == stream.result.text == submitted.text
    assert stream.result.usage == submitted.usage
    assert stream.result.finish_reason == submitted.finish_reason


# --- stream faults in virtual time -----------------------------------------------------------


def _virtual(clock: FakeClock, **config: Any) -> tuple[Scheduler, VirtualServer]:
    server = VirtualServer(SimulatorConfig(**config), now=clock.now, sleep=clock.sleep)

    async def handler(path: str, body: dict[str, Any]) -> MockStream:
        response = await server.respond(path, body)
        return MockStream(response.status, server.chunks(response), response.headers)

    scheduler = Scheduler(
        api_key=KEY,
        clock=clock,
        transport=MockStreamTransport(handler),
        rng=random.Random(0),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        max_concurrency=4,
    )
    return scheduler, server


async def _read(clock: FakeClock, scheduler: Scheduler, endpoint: str) -> tuple[str, Any]:
    """Stream one prompt to its end in virtual time: (text, Result) or (partial text, error)."""

    async def run() -> tuple[str, Any]:
        stream = scheduler.stream(PROMPT, endpoint=endpoint)
        try:
            async with stream:
                _ = [chunk async for chunk in stream]
        except Exception as exc:
            return stream.text, exc
        return stream.text, stream.result

    task = asyncio.ensure_future(run())
    await clock.run_until_done(task, limit=3600.0)
    return task.result()


@pytest.mark.parametrize("endpoint", ["chat/completions", "responses"])
@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        ("stream_error_first", "retried"),  # nothing was delivered: a transparent retry
        ("stream_hang_first", "retried"),  # cut at the first-byte bound, then retried
        ("stream_error_mid", InternalServerError),
        ("stream_reset_mid", APIConnectionError),
        ("stream_hang_mid", APITimeoutError),  # cut at the gap bound
        ("stream_no_done", APIConnectionError),
    ],
)
async def test_virtual_server_acts_out_each_stream_fault(
    endpoint: str, kind: str, outcome: Any
) -> None:
    """The VirtualServer breaks a stream as the socket server does, in virtual time."""
    clock = FakeClock()
    scheduler, server = _virtual(clock, latency=0.5, hang_seconds=10_000.0)
    async with scheduler:
        for _ in range(3):  # teach the watchdog this model's pace
            await _read(clock, scheduler, endpoint)
        server.fail_next(kind)
        started = clock.now()
        text, ended = await _read(clock, scheduler, endpoint)
        await scheduler.aclose(cancel=True)
    assert server.stats.faults == {kind: 1}
    # A hang is cut by the learned bounds within seconds, never after the 10,000 s hang.
    assert clock.now() - started < 10.0
    if outcome == "retried":
        assert ended.attempts == 2
        assert text == ended.text and text.startswith("Simulated")
    else:
        assert isinstance(ended, outcome)
        assert text.startswith("Simulated") and ended.partial_text == text
