"""The lean client's edges: odd but legal answers, its pool, its end, TLS.

Several cases here were defects of the first version (an interim answer cut off taken for the
answer, a body ended by the close misread as cut short, doubled headers joined, connections
left open at ``aclose``); each runs over both clients where aiohttp's answer is the reference.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from raw_http import Exchange, answer, ok, raw_server
from transport_clients import CHAT, KINDS, client, fails, hold, served, until

from grok_scheduler import AiohttpTransport
from grok_scheduler._errors import APIConnectionError
from grok_scheduler._transports import _lean
from grok_scheduler._wire._classify import classify_exception, classify_response


@pytest.mark.parametrize("kind", KINDS)
async def test_a_body_without_chunks_ends_at_the_close(kind: str) -> None:
    """``Transfer-Encoding: identity`` gives no length: the close ends the body."""
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nthe body"
    async with served(kind, answer(raw, close=True)) as (_server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert (response.status, response.body) == (200, b"the body")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_doubled_header_reads_as_its_first_value(kind: str) -> None:
    """As aiohttp's headers answer ``get``: a doubled Retry-After is not an unreadable "2, 5"."""
    raw = (
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nretry-after: 5\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    async with served(kind, answer(raw)) as (_server, transport):
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.headers.get("retry-after") == "2"
    assert classify_response(429, response.headers, b"").retry_after == 2.0


@pytest.mark.parametrize("kind", KINDS)
async def test_an_upgrade_answer_is_returned_quietly(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 101 to a POST is returned as it is; the loop logs no protocol failure for it."""
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        async with served(kind, answer(raw)) as (_server, transport):
            response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert response.status == 101
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.parametrize("kind", KINDS)
async def test_aclose_closes_the_connections_in_use(kind: str) -> None:
    """A call in flight at ``aclose`` fails retryable and its connection is closed, not pooled.

    Left open, the connection of an answer arriving after ``aclose`` went back to the pool of a
    closed transport, where nothing would ever close it.
    """
    release = asyncio.Event()
    async with served(kind, hold(release, ok())) as (server, transport):
        call = asyncio.ensure_future(transport.send("chat/completions", CHAT, timeout=5.0))
        await until(lambda: len(server.requests) == 1)
        await transport.aclose()
        await until(lambda: not server.open_writers)
        release.set()
        with pytest.raises(APIConnectionError) as raised:
            await call
    assert classify_exception(raised.value).retryable is True
    if isinstance(transport, _lean.LeanTransport):
        assert transport._idle == []


async def test_bytes_after_the_answer_retire_the_connection() -> None:
    """What follows a whole answer on its connection answered nothing asked: not reused.

    Here a stray answer's head comes with the first answer and its body with the next one's;
    on that connection the next call would read the stray body as the start of its answer.
    """
    stray_head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"

    async def second(exchange: Exchange) -> None:
        if exchange.connection == 1:
            exchange.writer.write(b"stray")
        exchange.writer.write(ok(b"second"))

    async with served("lean", answer(ok(b"first") + stray_head), second) as (server, transport):
        first = await transport.send("chat/completions", CHAT, timeout=5.0)
        response = await transport.send("chat/completions", CHAT, timeout=5.0)
    assert (first.body, response.body) == (b"first", b"second")
    assert server.connections == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    fake = _Clock()
    monkeypatch.setattr(_lean, "time", fake)
    yield fake


async def test_an_idle_connection_expires(clock: _Clock) -> None:
    """Past the idle bound a pooled connection is closed, not reused (the server may have)."""
    async with served("lean", answer(ok())) as (server, transport):
        await transport.send("chat/completions", CHAT, timeout=5.0)
        clock.now += _lean._IDLE_SECONDS - 1
        await transport.send("chat/completions", CHAT, timeout=5.0)
        assert server.connections == 1
        clock.now += _lean._IDLE_SECONDS
        await transport.send("chat/completions", CHAT, timeout=5.0)
        assert server.connections == 2
        await until(lambda: len(server.open_writers) == 1)


async def test_idle_connections_a_burst_left_expire_too(clock: _Clock) -> None:
    """Calls reuse the newest idle connection; the older ones past the bound get closed."""
    release = asyncio.Event()

    async def gathered(exchange: Exchange) -> None:
        if len(server.requests) == 3:
            release.set()
        await release.wait()
        exchange.writer.write(ok())

    async with served("lean", gathered) as (server, transport):
        await asyncio.gather(
            *(transport.send("chat/completions", CHAT, timeout=5.0) for _ in "abc")
        )
        for _ in range(2):
            clock.now += _lean._IDLE_SECONDS * 2 / 3
            await transport.send("chat/completions", CHAT, timeout=5.0)
        assert server.connections == 3
        await until(lambda: len(server.open_writers) == 1)


async def test_the_pool_keeps_at_most_max_connections() -> None:
    """A burst opens what it needs; what the pool cannot keep is closed afterwards."""
    release = asyncio.Event()

    async def gathered(exchange: Exchange) -> None:
        if len(server.requests) == 5:
            release.set()
        await release.wait()
        exchange.writer.write(ok())

    async with served("lean", gathered) as (server, transport):
        assert isinstance(transport, _lean.LeanTransport)
        transport._max_idle = 2
        calls = [transport.send("chat/completions", CHAT, timeout=5.0) for _ in range(5)]
        answers = await asyncio.gather(*calls)
        assert [a.status for a in answers] == [200] * 5
        assert len(transport._idle) == 2
        await until(lambda: len(server.open_writers) == 2)


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a certificate with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("kind", KINDS)
async def test_an_untrusted_certificate_is_fatal(kind: str, self_signed: tuple[Path, Path]) -> None:
    """Retrying meets the same certificate: not retryable, as aiohttp's mapping says."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    served_requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served_requests.append(await reader.read(1))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client(kind, f"https://127.0.0.1:{port}/v1") as transport:
            error = await fails(transport)
    finally:
        server.close()
        await server.wait_closed()
    assert type(error) is APIConnectionError
    assert classify_exception(error).retryable is False
    assert not any(served_requests)


async def test_a_body_that_does_not_decode_closes_its_connection() -> None:
    """A corrupt gzip body fails the call; its connection, in no pool, must not stay open."""
    raw = ok(b"not gzip at all", extra="Content-Encoding: gzip\r\n")
    async with served("lean", answer(raw)) as (server, transport):
        error = await fails(transport)
        assert type(error) is APIConnectionError
        await until(lambda: not server.open_writers)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_key_beyond_latin1_goes_as_utf8(kind: str) -> None:
    """A pasted key with a curly quote: sent in UTF-8 (the server refuses it), as aiohttp
    sends it; the lean client did not start at all (an untyped UnicodeEncodeError)."""
    key = "xai-pasted\u2019key"
    async with raw_server(answer(ok())) as server:
        cls = _lean.LeanTransport if kind == "lean" else AiohttpTransport
        transport = cls(base_url=server.url(), api_key=key, max_connections=2)
        try:
            response = await transport.send("chat/completions", CHAT, timeout=5.0)
        finally:
            await transport.aclose()
    assert response.status == 200
    head = server.requests[0].head.lower()
    assert b"authorization: bearer " + key.lower().encode("utf-8") + b"\r\n" in head
