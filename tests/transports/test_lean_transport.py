"""The lean HTTP/1.1 client against real local servers, side by side with aiohttp's transport.

What the scheduler sees must not depend on the client: each behaviour both clients share is
run over both (``kind``), so a difference shows up as one of the two failing. Misbehaving
servers are raw sockets (``raw_http``); normal answers come from the simulator.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import zlib
from collections.abc import Callable

import pytest
from raw_http import Exchange, answer, ok
from transport_clients import CHAT, KEY, KINDS, client, fails, hold, served, until

from grok_scheduler import Scheduler
from grok_scheduler._errors import APIConnectionError, APITimeoutError, RateLimitError
from grok_scheduler._transports._lean import LeanTransport
from grok_scheduler._wire._classify import classify_exception, classify_response
from grok_scheduler._wire._headers import parse_rate_limit_headers
from grok_scheduler.simulator import Simulator, SimulatorConfig

# --- normal answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_simulator_answer_with_content_length(kind: str) -> None:
    config = SimulatorConfig(latency=0.0, api_key=KEY)
    async with Simulator(config) as sim, client(kind, sim.base_url) as transport:
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 200
    assert json.loads(response.body)["object"] == "chat.completion"
    assert response.request_id is not None
    assert response.headers.get("content-type", "").startswith("application/json")


@pytest.mark.parametrize("kind", KINDS)
async def test_the_request_as_sent(kind: str) -> None:
    """Path under the base URL's prefix, Host with the port, the key only in Authorization."""
    async with served(kind, answer(ok()), prefix="/proxy/v1/") as (server, t):
        await t.send("chat/completions", CHAT, timeout=5.0)
    (exchange,) = server.requests
    assert exchange.head.startswith(b"POST /proxy/v1/chat/completions HTTP/1.1\r\n")
    assert exchange.header("host") == f"127.0.0.1:{server.port}"
    assert exchange.header("authorization") == f"Bearer {KEY}"
    assert exchange.header("content-type") == "application/json"
    assert exchange.header("user-agent") == "grok-scheduler/0.1"
    assert exchange.body == CHAT
    assert exchange.head.count(KEY.encode()) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_ipv6_literal(kind: str) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with served(kind, answer(ok()), host="::1") as (server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 200
    assert server.requests[0].header("host") == f"[::1]:{server.port}"


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_chunked_answer(kind: str) -> None:
    async with served(kind, answer(CHUNKED)) as (server, transport):
        first = await transport.send("chat/completions", CHAT, timeout=5.0)
        second = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert (first.status, first.body, second.body) == (200, b"hello world", b"hello world")
    assert server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_ended_by_the_connection_closing(kind: str) -> None:
    """No length and no chunks: the body is whatever came before the close; never reused."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    async with served(kind, answer(raw, close=True)) as (server, t):
        first = await t.send("chat/completions", CHAT, timeout=5.0)
        second = await t.send("chat/completions", CHAT, timeout=5.0)
    assert (first.status, first.body, second.body) == (200, b"all of it", b"all of it")
    assert server.connections == 2


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODED: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    # What many servers send as "deflate" (no zlib header): aiohttp decodes it too.
    "raw-deflate": _raw_deflate,
}


@pytest.mark.parametrize("encoding", list(ENCODED))
@pytest.mark.parametrize("kind", KINDS)
async def test_compressed_bodies_are_decoded(kind: str, encoding: str) -> None:
    body = json.dumps({"text": "squeeze " * 200}).encode()
    name = "deflate" if encoding == "raw-deflate" else encoding
    raw = ok(ENCODED[encoding](body), extra=f"Content-Encoding: {name.upper()}\r\n")
    async with served(kind, answer(raw)) as (server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.body == body
    assert "gzip" in (server.requests[0].header("accept-encoding") or "")


@pytest.mark.parametrize("kind", KINDS)
async def test_an_empty_compressed_body_is_empty(kind: str) -> None:
    raw = ok(b"", extra="Content-Encoding: deflate\r\n")
    async with served(kind, answer(raw)) as (_server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert (response.status, response.body) == (200, b"")


async def test_an_unknown_content_encoding_is_a_fatal_connection_error() -> None:
    """Retrying gets the same undecodable bytes back: not retryable."""
    raw = ok(b"\x00\x01", extra="Content-Encoding: x-squash\r\n")
    async with served("lean", answer(raw)) as (_server, transport):
        error = await fails(transport)
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is False


@pytest.mark.parametrize("kind", KINDS)
async def test_headers_in_any_case_are_read_in_lower_case(kind: str) -> None:
    extra = (
        "X-RateLimit-Limit-Requests: 60\r\nX-RateLimit-Remaining-Requests: 7\r\n"
        "X-Ratelimit-Reset-Requests: 2s\r\nX-Request-ID: req-123\r\n"
    )
    async with served(kind, answer(ok(extra=extra))) as (_server, t):
        response = await t.send("chat/completions", CHAT, timeout=5.0)
    assert response.headers.get("x-ratelimit-remaining-requests") == "7"
    assert response.request_id == "req-123"
    limits = parse_rate_limit_headers(response.headers, now_wall=0.0)
    assert (limits.requests_limit, limits.requests_remaining) == (60, 7)


RATE_LIMITED = (
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Type: application/json\r\n"
    b'Content-Length: 43\r\n\r\n{"code":"Some resource has been exhausted"}'
)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_429_with_retry_after_is_an_answer(kind: str) -> None:
    async with served(kind, answer(RATE_LIMITED)) as (_server, t):
        response = await t.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 429
    verdict = classify_response(response.status, response.headers, response.body)
    assert type(verdict.error) is RateLimitError
    assert (verdict.retryable, verdict.retry_after) == (True, 3.0)


@pytest.mark.parametrize("kind", KINDS)
async def test_interim_answers_are_skipped(kind: str) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    async with served(kind, answer(early + ok())) as (server, t):
        response = await t.send("chat/completions", CHAT, timeout=5.0)
        again = await t.send("chat/completions", CHAT, timeout=5.0)
    assert (response.status, response.body, again.status) == (200, b'{"ok":true}', 200)
    assert "link" not in response.headers
    assert server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_204_has_no_body_and_keeps_the_connection(kind: str) -> None:
    no_content = answer(b"HTTP/1.1 204 No Content\r\nX-Request-Id: r-204\r\n\r\n")
    async with served(kind, no_content, answer(ok())) as (server, t):
        first = await t.send("chat/completions", CHAT, timeout=5.0)
        second = await t.send("chat/completions", CHAT, timeout=5.0)
    assert (first.status, first.body, second.status) == (204, b"", 200)
    assert server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_is_returned_not_followed(kind: str) -> None:
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://evil.example/\r\n"
    async with served(kind, answer(moved + b"Content-Length: 0\r\n\r\n")) as (server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 307
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_large_bodies_both_ways(kind: str) -> None:
    """Megabytes out and back (a long context, a long answer), chunked and with a length."""
    big = b"x" * (3 * 1024 * 1024)
    parts = (big[:1000], big[1000:])
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    async with served(kind, answer(ok(big)), answer(chunked)) as (server, transport):
        first = await transport.send("chat/completions", big, timeout=30.0)
        second = await transport.send("chat/completions", CHAT, timeout=30.0)
    assert first.body == big and second.body == big
    assert server.requests[0].body == big


# --- connections ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_two_calls_share_one_connection(kind: str) -> None:
    async with served(kind, answer(ok())) as (server, transport):
        for _ in range(2):
            assert (await transport.send("chat/completions", CHAT, timeout=5.0)).status == 200
    assert server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_close_answers_are_not_reused(kind: str) -> None:
    raw = ok(extra="Connection: close\r\n")
    async with served(kind, answer(raw, close=True)) as (server, t):
        for _ in range(2):
            assert (await t.send("chat/completions", CHAT, timeout=5.0)).status == 200
    assert server.connections == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_a_connection_the_server_closed_while_idle_is_not_used(kind: str) -> None:
    """The server's FIN arrived while the connection sat idle: the next call dials afresh."""
    async with served(kind, answer(ok(), close=True), answer(ok())) as (server, transport):
        await transport.send("chat/completions", CHAT, timeout=5.0)
        await until(lambda: not server.open_writers)
        # The client sees the FIN on its next turn of the loop; give it a few.
        for _ in range(5):
            await asyncio.sleep(0)
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 200
    assert server.connections == 2


async def _close_without_answer(exchange: Exchange) -> None:
    exchange.writer.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_request_on_a_connection_closed_in_flight_is_retryable(kind: str) -> None:
    """The keep-alive race: the server closes just as the next request goes out.

    The POST is not sent again by the client (the server may have acted on it); the scheduler
    retries it as it retries any connection failure.
    """
    async with served(kind, answer(ok()), _close_without_answer) as (server, transport):
        await transport.send("chat/completions", CHAT, timeout=5.0)
        error = await fails(transport)
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is True
    assert len(server.requests) == 2


_CUT_SHORT = {
    "mid-answer": b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial',
    # A 103 is not the answer: a close after it is a disconnect, not a 103.
    "after-interim": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
}


@pytest.mark.parametrize("reply", list(_CUT_SHORT.values()), ids=list(_CUT_SHORT))
@pytest.mark.parametrize("kind", KINDS)
async def test_a_close_before_the_whole_answer_is_retryable(kind: str, reply: bytes) -> None:
    async with served(kind, answer(reply, close=True)) as (_server, t):
        error = await fails(t)
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is True


async def test_garbage_is_retryable() -> None:
    """Not HTTP at all (a confused proxy): retryable, as a broken connection is.

    aiohttp reports the same bytes as a ClientResponseError with status 400, which its mapping
    classifies as a fatal BadRequestError; the lean client treats them as a broken connection.
    """
    async with served("lean", answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as (_server, transport):
        error = await fails(transport)
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is True


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused_is_retryable(kind: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(kind, f"http://127.0.0.1:{port}/v1") as transport:
        error = await fails(transport)
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is True


@pytest.mark.parametrize("kind", KINDS)
async def test_a_timeout_is_retryable_and_the_connection_dropped(kind: str) -> None:
    """A late answer to the timed-out call is never taken for the next call's answer."""
    release = asyncio.Event()
    late = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate"
    async with served(kind, hold(release, late), answer(ok())) as (server, transport):
        error = await fails(transport, timeout=0.05)
        release.set()
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert type(error) is APITimeoutError
    assert classify_exception(error).retryable is True
    assert response.body == b'{"ok":true}'
    assert server.connections == 2


async def test_a_cancelled_call_closes_its_connection() -> None:
    release = asyncio.Event()
    async with served("lean", hold(release), answer(ok())) as (server, transport):
        call = asyncio.create_task(transport.send("chat/completions", CHAT, timeout=5.0))
        await until(lambda: len(server.requests) == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The server sees the connection go (its handler ends), though it never answered.
        await until(lambda: not server.open_writers)
        assert isinstance(transport, LeanTransport)
        assert (transport._idle, transport._busy) == ([], set())
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
        release.set()
    assert response.status == 200
    assert server.connections == 2


# --- the transport as a whole -----------------------------------------------------------------


def test_repr_hides_the_key() -> None:
    transport = LeanTransport(base_url="https://api.x.ai/v1", api_key=KEY, max_connections=1)
    assert KEY not in repr(transport)
    assert KEY[4:12] not in repr(transport)


async def test_streams_go_through_aiohttp() -> None:
    config = SimulatorConfig(latency=0.0, requests_per_second=None, api_key=KEY)
    body = json.dumps({**json.loads(CHAT), "stream": True}).encode()
    async with Simulator(config) as sim, client("lean", sim.base_url) as transport:
        assert isinstance(transport, LeanTransport)
        stream = await transport.open_stream("chat/completions", body, timeout=5.0)
        try:
            text = (await stream.read()).decode()
        finally:
            await stream.aclose()
    assert stream.status == 200
    assert text.rstrip().endswith("data: [DONE]")


async def test_a_scheduler_over_the_lean_client() -> None:
    config = SimulatorConfig(latency=0.0, requests_per_second=None, api_key=KEY)
    async with Simulator(config) as sim:
        transport = LeanTransport(base_url=sim.base_url, api_key=KEY, max_connections=8)
        async with Scheduler(transport=transport, max_concurrency=8) as scheduler:
            results = await asyncio.gather(*(scheduler.submit(f"q{i}") for i in range(40)))
        assert sim.stats.requests == 40
    for result in results:
        assert result.text
        assert result.usage.completion_tokens == config.completion_tokens
        assert result.attempts == 1
