"""send_raw: an SDK's body goes out unchanged and the server's last answer comes back."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from fakes import Server, error, make_scheduler, ok

from grok_scheduler import (
    FakeClock,
    InvalidJobError,
    Priority,
    RetryPolicy,
    Scheduler,
    TransportResponse,
)


def _chat(text: str) -> dict[str, Any]:
    return {"model": "grok-4", "messages": [{"role": "user", "content": text}]}


async def _run(clock: FakeClock, coro: Any) -> Any:
    task = asyncio.ensure_future(coro)
    await clock.run_until_done(task, limit=3600.0)
    return task.result()


async def test_body_is_sent_unchanged_and_the_answer_returned() -> None:
    """The SDK's body (extra fields included) is sent as built; the 200 comes back whole."""
    clock = FakeClock()
    bodies: list[dict[str, Any]] = []

    def answer(body: dict[str, Any]) -> TransportResponse:
        bodies.append(body)
        return ok("hello")

    body = {
        "model": "grok-4-fast",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    async with make_scheduler(clock, Server(clock, answer=answer)) as scheduler:
        response = await _run(clock, scheduler.send_raw("chat/completions", body))
        assert "grok-4-fast" in scheduler.statistics().models
    assert bodies == [body]
    assert response.status == 200
    assert json.loads(response.body)["choices"][0]["message"]["content"] == "hello"
    assert response.headers["x-request-id"] == "req-ok"


async def test_a_retried_429_then_success_returns_the_success() -> None:
    """The scheduler retries a 429 itself; the caller sees only the final 200."""
    clock = FakeClock()
    server = Server(clock)
    server.script = [error(429, "Too many requests"), ok("after")]
    async with make_scheduler(clock, server) as scheduler:
        response = await _run(clock, scheduler.send_raw("chat/completions", _chat("x")))
    assert response.status == 200
    assert len(server.sent) == 2


async def test_a_final_error_answer_is_returned_not_raised() -> None:
    """The last attempt's 429 (retries spent) is handed back with its status and body."""
    clock = FakeClock()
    server = Server(clock)
    server.script = [error(429, "slow down"), error(429, "still too many")]
    retry = RetryPolicy(max_attempts=2)
    async with make_scheduler(clock, server, retry=retry) as scheduler:
        response = await _run(clock, scheduler.send_raw("chat/completions", _chat("x")))
    assert response.status == 429
    assert b"still too many" in response.body


async def test_a_fatal_400_is_returned_with_its_body() -> None:
    """A 400 is not retried and comes back as the server said it."""
    clock = FakeClock()
    server = Server(clock)
    server.script = [error(400, "bad field", code="Client specified an invalid argument")]
    async with make_scheduler(clock, server) as scheduler:
        response = await _run(clock, scheduler.send_raw("chat/completions", _chat("x")))
    assert response.status == 400
    assert len(server.sent) == 1


async def test_priority_block_orders_raw_calls() -> None:
    """Inside `with scheduler.priority(...)` raw calls take that priority."""
    clock = FakeClock()
    server = Server(clock, latency=1.0)
    async with make_scheduler(clock, server, max_concurrency=1) as scheduler:
        first = asyncio.ensure_future(scheduler.send_raw("chat/completions", _chat("first")))
        await asyncio.sleep(0)
        low = asyncio.ensure_future(
            scheduler.send_raw("chat/completions", _chat("low"), priority=3)
        )
        await asyncio.sleep(0)
        with scheduler.priority(Priority.CRITICAL):
            urgent = asyncio.ensure_future(scheduler.send_raw("chat/completions", _chat("urgent")))
        await _run(clock, asyncio.gather(first, low, urgent))
    assert server.prompts[1:] == ["urgent", "low"]


async def test_unscheduled_paths_and_bad_priorities_are_refused() -> None:
    """Only chat/completions and responses are scheduled; the priority must be an int."""
    clock = FakeClock()
    async with make_scheduler(clock, Server(clock)) as scheduler:
        with pytest.raises(InvalidJobError, match="scheduled"):
            await scheduler.send_raw("models", {})
        with pytest.raises(InvalidJobError, match="priority"):
            await scheduler.send_raw("responses", {"input": "x"}, priority="high")  # type: ignore[arg-type]


async def test_submit_refuses_unknown_roles() -> None:
    """A message role xAI does not know is refused at submit, never sent."""
    clock = FakeClock()
    server = Server(clock)
    async with make_scheduler(clock, server) as scheduler:
        with pytest.raises(InvalidJobError, match="wizard"):
            scheduler.submit_nowait([{"role": "wizard", "content": "hi"}])
    assert server.sent == []


async def test_a_streamed_raw_body_is_refused_not_sent_again_and_again() -> None:
    """``stream: true`` is refused before sending: its event-stream 200 was retried as unusable."""
    clock = FakeClock()
    server = Server(clock)
    async with make_scheduler(clock, server) as scheduler:
        with pytest.raises(InvalidJobError, match="stream"):
            await _run(
                clock, scheduler.send_raw("chat/completions", {**_chat("hi"), "stream": True})
            )
        response = await _run(
            clock, scheduler.send_raw("chat/completions", {**_chat("plain"), "stream": False})
        )
    assert response.status == 200
    assert server.prompts == ["plain"]


@pytest.mark.parametrize(
    "unusable",
    [
        b'{"id": "chatcmpl-truncated", "object": "chat.compl',  # cut mid-JSON
        b'{"id": "chatcmpl-1", "object": "chat.completion"}',  # no choices
    ],
)
async def test_a_200_with_an_unusable_body_is_passed_through_not_retried(unusable: bytes) -> None:
    """A raw caller's SDK reads the body and raises on what it cannot read: the server's 200
    comes back byte for byte after one call, not bought again (a submitted job retries it)."""
    clock = FakeClock()
    server = Server(clock)
    server.script = [TransportResponse(200, unusable, {"x-request-id": "req-bad"})]
    async with make_scheduler(clock, server) as scheduler:
        response = await _run(clock, scheduler.send_raw("chat/completions", _chat("hi")))
        submitted = scheduler.submit_nowait("again")
        server.script = [TransportResponse(200, unusable, {}), ok("fine")]
        result = await _run(clock, submitted)
    assert (response.status, response.body) == (200, unusable)
    assert response.headers["x-request-id"] == "req-bad"
    assert result.text == "fine" and result.attempts == 2
    assert server.prompts == ["hi", "again", "again"]


class _BytesRecorder:
    """A transport that records the bytes each attempt sent: the first answer a 503."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[bytes] = []

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        self.sent.append(body)
        await self.clock.sleep(0.1)
        return error(503, "busy") if len(self.sent) == 1 else ok("hi")

    async def aclose(self) -> None:
        pass


async def test_the_clients_own_bytes_are_sent_on_every_attempt() -> None:
    """Given ``encoded``, the bytes go out as the client wrote them (its spacing, its key order,
    its unescaped text), on the retry too; without it the body is encoded as before."""
    clock = FakeClock()
    encoded = '{ "messages": [{"role": "user", "content": "héllo"}],  "model": "grok-4" }'.encode()
    body = json.loads(encoded)
    for given in (encoded, None):
        transport = _BytesRecorder(clock)
        scheduler = Scheduler(
            api_key="xai-test", clock=clock, transport=transport, rng=random.Random(0)
        )
        async with scheduler:
            call = scheduler.send_raw("chat/completions", body, encoded=given)
            response = await _run(clock, call)
        assert response.status == 200
        assert [json.loads(sent) for sent in transport.sent] == [body, body]
        assert transport.sent[0] == transport.sent[1]
        assert (transport.sent[0] == encoded) is (given is not None)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32-le"])
async def test_bytes_that_are_not_plain_utf8_are_encoded_anew(encoding: str) -> None:
    """``json.loads`` reads a BOM or UTF-16/32 too; JSON on the wire is UTF-8 without a BOM
    (RFC 8259), which is what the body was sent as before the client's bytes were passed on."""
    clock = FakeClock()
    body = _chat("héllo")
    transport = _BytesRecorder(clock)
    scheduler = Scheduler(
        api_key="xai-test", clock=clock, transport=transport, rng=random.Random(0)
    )
    async with scheduler:
        given = json.dumps(body).encode(encoding)
        assert json.loads(given) == body
        response = await _run(clock, scheduler.send_raw("chat/completions", body, encoded=given))
    assert response.status == 200
    for sent in transport.sent:
        assert json.loads(sent.decode("utf-8")) == body  # str: no BOM, no NULs accepted
