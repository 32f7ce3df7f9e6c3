"""The CLI's drainable transport streams: slow calls go on the wire as streams, and Ctrl-C (drain,
then stop) or ``aclose()`` leaves no stream open and no job pending.

The wrapper is tested in virtual time over ``MockStreamTransport``; the CLI's own interrupt path
(``BulkRun``) over real sockets against the simulator, in process, so the transport can be asked
afterwards whether every stream it opened was closed.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import LOCAL_KEY, plain, read_jsonl, write_jsonl

from grok_scheduler import (
    FakeClock,
    MockStream,
    MockStreamTransport,
    MockTransport,
    Scheduler,
    StreamingTransport,
    TransportResponse,
)
from grok_scheduler._transports._drain import DrainableStreamingTransport, drainable
from grok_scheduler.cli._bulk import BulkRun
from grok_scheduler.cli._options import RunOptions
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"


def _sse(*frames: object) -> list[bytes]:
    return [
        b"data: " + (f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n\n"
        for f in frames
    ]


def _words(n: int) -> list[bytes]:
    head = {"id": "c1", "model": "grok-4"}
    deltas = [{**head, "choices": [{"index": 0, "delta": {"content": "w"}}]}] * n
    end = {
        **head,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n},
    }
    return _sse(*deltas, end, b"[DONE]")


class _Server:
    """Streams ``words`` chunks one second apart; ``hang`` stops after the first one."""

    def __init__(self, clock: FakeClock, *, words: int = 8, hang: bool = False) -> None:
        self.clock = clock
        self.words = words
        self.hang = hang
        self.bodies: list[dict[str, Any]] = []
        self.finished = 0

    async def _body(self) -> AsyncIterator[bytes]:
        for number, chunk in enumerate(_words(self.words)):
            if number:
                await self.clock.sleep(3600.0 if self.hang else 1.0)
            yield chunk
        self.finished += 1

    async def __call__(self, path: str, body: dict[str, Any]) -> MockStream:
        self.bodies.append(body)
        return MockStream(200, self._body())


def test_the_wrapper_streams_exactly_when_its_transport_can() -> None:
    """Over a plain transport it stays plain (the scheduler must not try to stream on it)."""

    async def answer(path: str, body: dict[str, Any]) -> TransportResponse:
        return TransportResponse(200, b"{}")

    assert not isinstance(drainable(MockTransport(answer)), StreamingTransport)
    streaming = drainable(MockStreamTransport(_Server(FakeClock())))
    assert isinstance(streaming, StreamingTransport)
    assert isinstance(streaming, DrainableStreamingTransport)


async def test_a_cli_shaped_run_streams_and_a_drain_waits_for_the_streams() -> None:
    """Jobs without max_tokens go on the wire as streams; drained mid-answer, every stream on
    the wire is read to its end and its job answered before ``wait_idle`` returns, and the job
    held after the drain never reaches the server."""
    clock = FakeClock(start=0.0)
    server = _Server(clock)
    transport = drainable(MockStreamTransport(server))
    scheduler = Scheduler(
        api_key=KEY, clock=clock, transport=transport, rng=random.Random(1), max_concurrency=3
    )
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(3)]
        await clock.advance(2.5)  # first contact ramp: all three are streaming by now
        assert transport.sending == 3
        assert all(body.get("stream") is True for body in server.bodies)
        held = scheduler.submit_nowait("sent after the drain")

        async def drain() -> list[bool]:
            # As the CLI does: once idle, whatever is not answered is cancelled at once.
            await transport.wait_idle()
            answered = [f.done() and not f.cancelled() for f in futures]
            held.cancel()
            return answered

        idle = asyncio.ensure_future(drain())
        await clock.run_until_done(idle, limit=60.0)
        # The drain waited for the streams, and their answers were in before it returned.
        assert server.finished == 3 and idle.result() == [True] * 3
        assert [f.result().text for f in futures] == ["wwwwwwww"] * 3
        assert len(server.bodies) == 3 and transport.sending == 0
        await scheduler.aclose(cancel=True)


async def test_jobs_held_by_a_drain_are_neither_sent_nor_failed_while_long_calls_finish() -> None:
    """Ctrl-C once as the CLI does it (pause, then drain) with 25-minute answers on the wire.

    The queued jobs wait at the gate, never sent and never failed, until the drain's end
    cancels them (redone on resume). Held in the draining transport instead, each was cut by
    the watchdog as a silent stream, retried, held and cut again until it failed as a timeout:
    a failure line for a job the server never saw.
    """
    clock = FakeClock(start=0.0)
    server = _Server(clock, words=1500)
    transport = drainable(MockStreamTransport(server))
    scheduler = Scheduler(
        api_key=KEY,
        clock=clock,
        transport=transport,
        rng=random.Random(1),
        requests_per_second=0.5,
    )
    async with scheduler:
        futures = [scheduler.submit_nowait(f"job {i}") for i in range(6)]
        await clock.advance(5.0)  # the rest wait for credit, which comes during the drain
        sent = len(server.bodies)
        assert transport.sending == sent >= 2
        scheduler.pause()
        transport.drain()
        idle = asyncio.ensure_future(transport.wait_idle())
        await clock.run_until_done(idle, limit=3600.0)
        assert [f.done() for f in futures] == [True] * sent + [False] * (6 - sent)
        assert all(f.result().text == "w" * 1500 for f in futures[:sent])
        assert len(server.bodies) == sent and scheduler.paused
        await scheduler.aclose(cancel=True)
    assert all(f.done() for f in futures)


async def test_a_paused_scheduler_sends_again_on_resume_and_a_graceful_close_finishes() -> None:
    """pause() holds queued jobs at the gate; resume() sends them; aclose() overrides a pause."""
    clock = FakeClock(start=0.0)
    server = _Server(clock, words=2)
    scheduler = Scheduler(
        api_key=KEY, clock=clock, transport=MockStreamTransport(server), rng=random.Random(1)
    )
    await scheduler.start()
    scheduler.pause()
    first = scheduler.submit_nowait("job 0")
    await clock.advance(30.0)
    assert not first.done() and server.bodies == []
    scheduler.resume()
    await clock.run_until_done(first, limit=60.0)
    scheduler.pause()
    second = scheduler.submit_nowait("job 1")
    closing = asyncio.ensure_future(scheduler.aclose())
    await clock.run_until_done(closing, limit=60.0)
    assert second.result().text == "ww" and len(server.bodies) == 2


async def test_aclose_with_streams_on_the_wire_closes_them_all() -> None:
    """Streams hung mid-answer, then ``aclose(cancel=True)``: each is closed, no job pending."""
    clock = FakeClock(start=0.0)
    inner = MockStreamTransport(_Server(clock, hang=True))
    transport = drainable(inner)
    scheduler = Scheduler(
        api_key=KEY, clock=clock, transport=transport, rng=random.Random(1), max_concurrency=4
    )
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"job {i}") for i in range(4)]
    await clock.advance(2.5)
    assert transport.sending == 4 and len(inner.opened) == 4
    await scheduler.aclose(cancel=True)
    assert all(future.done() for future in futures)
    assert all(stream.closed for stream in inner.opened)
    assert transport.sending == 0


# -- the CLI's interrupts over real sockets --------------------------------------------------


def _options(source: Path, output: Path, base_url: str) -> RunOptions:
    return RunOptions(
        input=str(source),
        output=output,
        base_url=base_url,
        api_key=LOCAL_KEY,
        concurrency=4,
        progress="plain",
    )


async def _until(condition: Any, timeout: float = 20.0) -> None:
    """Wait for a real socket's progress (no event to wait on inside the simulator)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "no progress"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("interrupts", [1, 2])
async def test_ctrl_c_leaves_no_stream_open_and_no_job_pending(
    tmp_path: Path, interrupts: int
) -> None:
    """Ctrl-C once: the streams on the wire finish and are recorded. Twice: they are closed at
    once. Either way the transport has no stream open and the scheduler no job left."""
    latency = 0.6 if interrupts == 1 else 30.0
    sim = Simulator(SimulatorConfig(requests_per_second=None, latency=latency, api_key=LOCAL_KEY))
    await sim.start()
    try:
        source = write_jsonl(tmp_path / "in.jsonl", plain(40))
        output = tmp_path / "out.jsonl"
        bulk = BulkRun(_options(source, output, sim.base_url), io.StringIO())
        run = asyncio.ensure_future(bulk.run(handle_signals=False))
        await _until(lambda: bulk._transport is not None and bulk._transport.sending >= 2)
        transport = bulk._transport
        assert isinstance(transport, DrainableStreamingTransport)
        for _ in range(interrupts):
            bulk._interrupt()
        report = await asyncio.wait_for(run, 15.0)
        assert bulk.interrupted and report is not None
        assert transport.sending == 0
        assert bulk._scheduler is not None
        stats = bulk._scheduler.statistics()
        assert stats.in_flight == 0 and stats.queued == 0
        recorded = read_jsonl(output)
        if interrupts == 1:
            # Every call the server accepted was answered and recorded; nothing new was sent.
            assert 2 <= len(recorded) == sim.stats.accepted < 40
            assert all(line["error"] is None for line in recorded)
        else:
            assert recorded == []  # 30 s answers: none finished, none recorded as failed
    finally:
        await sim.stop()
