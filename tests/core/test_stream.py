"""Scheduler.stream in virtual time: chunks, the final Result, retries, error frames, hangs."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from grok_scheduler import (
    APIConnectionError,
    APITimeoutError,
    FakeClock,
    InternalServerError,
    MockStream,
    MockStreamTransport,
    Scheduler,
    StreamChunk,
)

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def sse(*frames: object) -> list[bytes]:
    return [
        b"data: " + (f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n\n"
        for f in frames
    ]


def delta(text: str) -> dict[str, Any]:
    return {"id": "c1", "model": "grok-4", "choices": [{"index": 0, "delta": {"content": text}}]}


def final(reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "c1",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
        "usage": USAGE,
    }


def good() -> list[bytes]:
    return sse(delta("Hel"), delta("lo"), final(), b"[DONE]")


class Script:
    """Answers each stream with the next scripted MockStream; records request bodies."""

    def __init__(self, *streams: MockStream) -> None:
        self.streams = list(streams)
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, path: str, body: dict[str, Any]) -> MockStream:
        self.bodies.append(body)
        return self.streams.pop(0)


def slow(
    clock: FakeClock, chunks: list[bytes], *, pause_after: int, pause: float
) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i, chunk in enumerate(chunks):
            if i == pause_after:
                await clock.sleep(pause)
            yield chunk

    return gen()


def make(clock: FakeClock, script: Script, **options: Any) -> tuple[Scheduler, MockStreamTransport]:
    transport = MockStreamTransport(script)
    scheduler = Scheduler(
        api_key=KEY,
        clock=clock,
        transport=transport,
        rng=random.Random(0),
        max_concurrency=4,
        **options,
    )
    return scheduler, transport


async def read_all(clock: FakeClock, stream: Any) -> list[StreamChunk]:
    async def run() -> list[StreamChunk]:
        return [chunk async for chunk in stream]

    task = asyncio.ensure_future(run())
    await clock.run_until_done(task)
    return task.result()


async def test_chunks_then_result_with_usage_and_stream_options() -> None:
    """Deltas arrive as chunks; the Result carries the server's usage; usage was asked for."""
    clock = FakeClock()
    script = Script(MockStream(200, good()))
    scheduler, _ = make(clock, script)
    async with scheduler:
        async with scheduler.stream("hi", max_tokens=10) as stream:
            chunks = await read_all(clock, stream)
        assert [c.text for c in chunks] == ["Hel", "lo"]
        assert stream.result.text == "Hello"
        assert stream.result.usage.total_tokens == 10
        assert stream.result.finish_reason == "stop"
        assert stream.result.attempts == 1
    assert script.bodies[0]["stream"] is True
    assert script.bodies[0]["stream_options"] == {"include_usage": True}


async def test_failure_before_first_chunk_is_retried_transparently() -> None:
    """A 503 and a stream cut before any delta are retried; the caller sees one clean answer."""
    clock = FakeClock()
    busy = MockStream(
        503,
        [
            json.dumps(
                {"code": "The service is currently unavailable", "error": "at capacity"}
            ).encode()
        ],
    )
    cut = MockStream(
        200, sse({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    )
    script = Script(busy, cut, MockStream(200, good()))
    scheduler, _ = make(clock, script)
    async with scheduler, scheduler.stream("hi") as stream:
        chunks = await read_all(clock, stream)
    assert "".join(c.text for c in chunks) == "Hello"
    assert stream.result.attempts == 3


async def test_error_frame_after_first_chunk_raises_typed_with_partial_text() -> None:
    """An error frame mid-stream is typed by its code and not retried; the partial text is kept."""
    clock = FakeClock()
    frames = sse(delta("Par"), {"code": "Internal error", "error": "Internal error"})
    script = Script(MockStream(200, frames), MockStream(200, good()))
    scheduler, transport = make(clock, script)
    async with scheduler:
        stream = scheduler.stream("hi")
        with pytest.raises(InternalServerError) as caught:
            await read_all(clock, stream)
        await stream.aclose()
    assert caught.value.partial_text == "Par"
    assert transport.calls == 1


async def test_error_frame_first_is_retried_and_typed_object_form() -> None:
    """A ``{"type": "error"}`` frame before any delta is a retryable 5xx: the retry answers."""
    clock = FakeClock()
    first = MockStream(
        200, sse({"type": "error", "error": {"type": "server_error", "message": "boom"}})
    )
    scheduler, transport = make(clock, Script(first, MockStream(200, good())))
    async with scheduler, scheduler.stream("hi") as stream:
        await read_all(clock, stream)
    assert stream.result.text == "Hello"
    assert transport.calls == 2


async def test_stream_without_done_or_usage_is_a_connection_error() -> None:
    """A stream that ends after deltas but before [DONE]/usage fails typed, with its text."""
    clock = FakeClock()
    scheduler, _ = make(clock, Script(MockStream(200, sse(delta("Half")))))
    async with scheduler:
        stream = scheduler.stream("hi")
        with pytest.raises(APIConnectionError) as caught:
            await read_all(clock, stream)
    assert not isinstance(caught.value, APITimeoutError)
    assert caught.value.partial_text == "Half"


async def test_hang_before_first_byte_is_cut_at_the_prior_and_retried() -> None:
    """A silent stream is cut when the first-byte bound passes, then retried, in virtual time."""
    clock = FakeClock()
    hung = MockStream(200, slow(clock, good(), pause_after=0, pause=10_000))
    scheduler, transport = make(clock, Script(hung, MockStream(200, good())))
    async with scheduler:
        start = clock.now()
        async with scheduler.stream("hi") as stream:
            await read_all(clock, stream)
        waited = clock.now() - start
    assert stream.result.text == "Hello"
    assert hung.closed
    # The prior first-byte bound (90 s) plus a backoff of at most a few seconds.
    assert 90.0 <= waited < 105.0
    assert transport.calls == 2


async def test_learned_bounds_cut_a_hang_within_seconds() -> None:
    """After a few fast streams, a stream silent mid-way is cut at the gap floor (2 s)."""
    clock = FakeClock()
    fast = [MockStream(200, good()) for _ in range(3)]
    hung = MockStream(200, slow(clock, good(), pause_after=1, pause=10_000))
    scheduler, _ = make(clock, Script(*fast, hung))
    async with scheduler:
        for _ in range(3):
            async with scheduler.stream("hi") as stream:
                await read_all(clock, stream)
        start = clock.now()
        stream = scheduler.stream("hi")
        with pytest.raises(APITimeoutError) as caught:
            await read_all(clock, stream)
        # 2 s of silence after the first chunk; the send itself may wait up to a quarter
        # second on the first-contact ramp (no limit is given here).
        assert 2.0 <= clock.now() - start <= 2.25
    assert caught.value.partial_text == "Hel"
    assert hung.closed


async def test_caller_leaving_closes_the_stream_and_settles() -> None:
    """aclose mid-stream closes the connection and leaves nothing in flight or pending."""
    clock = FakeClock()
    hung = MockStream(200, slow(clock, good(), pause_after=1, pause=10_000))
    scheduler, _ = make(clock, Script(hung))
    async with scheduler:
        stream = scheduler.stream("hi")
        first = asyncio.ensure_future(stream.__anext__())
        await clock.run_until_done(first)
        assert first.result().text == "Hel"
        await stream.aclose()
        await clock.settle()
        assert hung.closed
        assert scheduler.statistics().in_flight == 0
        assert [c async for c in stream] == []


async def test_cancelled_while_queued_leaves_the_queue() -> None:
    """Closing a stream that never started removes its job; no call is made for it."""
    clock = FakeClock()
    scheduler, transport = make(clock, Script())
    async with scheduler:
        stream = scheduler.stream("hi")
        await stream.aclose()
        await clock.settle()
    assert transport.calls == 0
    assert scheduler.statistics().queued == 0


async def test_responses_stream() -> None:
    """``responses`` SSE: text deltas, then the completed response's usage and status."""
    clock = FakeClock()
    completed = {
        "type": "response.completed",
        "response": {
            "id": "r1",
            "object": "response",
            "model": "grok-4",
            "status": "completed",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Yo!"}]}],
            "usage": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6},
        },
    }
    frames = sse(
        {"type": "response.output_text.delta", "delta": "Yo"},
        {"type": "response.output_text.delta", "delta": "!"},
        completed,
    )
    script = Script(MockStream(200, frames))
    scheduler, _ = make(clock, script)
    async with scheduler, scheduler.stream("hi", endpoint="responses") as stream:
        chunks = await read_all(clock, stream)
    assert [c.text for c in chunks] == ["Yo", "!"]
    assert stream.result.text == "Yo!"
    assert stream.result.usage.total_tokens == 6
    assert "stream_options" not in script.bodies[0]
