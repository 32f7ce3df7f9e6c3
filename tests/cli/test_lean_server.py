"""The lean server answers the raw HTTP that aiohttp's server answers, the same way.

Each case is sent as bytes on a socket to the gateway on both servers; statuses and bodies must
agree (``Date`` and aiohttp's ``Server`` aside). Then what only the lean server's own code does:
pipelined requests answered in order, ``Expect: 100-continue``, refused requests closing the
connection, a client that leaves having its call cancelled, and the drain at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from gateway_keys import CLIENT_KEY, KEY
from gateway_serving import serving_gateway

from grok_scheduler import Scheduler
from grok_scheduler._transports._lean import LeanTransport
from grok_scheduler.cli._gateway import Gateway
from grok_scheduler.cli._lean_server import LeanServer
from grok_scheduler.simulator import Simulator, SimulatorConfig

pytest_plugins = ["gateway_support"]

SERVERS = ["aiohttp", "lean"]
CHAT = b'{"model":"grok-4.3","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'


def post(path: str, body: bytes, *, key: str = CLIENT_KEY, extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def get(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: gw\r\n{extra}\r\n".encode()


async def read_response(
    reader: asyncio.StreamReader, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-cased names), body (by Content-Length or chunks)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if head_only or status == 100:
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, body
            body += chunk[:-2]
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()


async def exchange(
    url: str, raw: bytes, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await read_response(reader, head_only)
    finally:
        writer.close()


CASES = {
    "chat": post("/v1/chat/completions", CHAT),
    "bad key": post("/v1/chat/completions", CHAT, key="nope"),
    "not json": post("/v1/chat/completions", b"{nope"),
    "not an object": post("/v1/chat/completions", b"[1, 2]"),
    "bad priority": post("/v1/responses", CHAT, extra="x-grok-scheduler-priority: soon\r\n"),
    "over the cap": post("/v1/chat/completions", b'{"x":"' + b"x" * 70_000 + b'"}'),
    "chunked over the cap": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "
        + CLIENT_KEY.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 70_000
        + b"x" * 70_000
        + b"\r\n0\r\n\r\n"
    ),
    "healthz": get("/healthz"),
    "models": get("/v1/models", extra=f"Authorization: Bearer {CLIENT_KEY}\r\n"),
    "models, bad key": get("/v1/models"),
    "unknown path": get("/v1/embeddings"),
    "trailing slash": post("/v1/chat/completions/", CHAT),
    "wrong method": get("/v1/chat/completions"),
    "query string": get("/healthz?verbose=1"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_both_servers_answer_alike(case: str, sim: Simulator, scheduler: Scheduler) -> None:
    answers = []
    for kind in SERVERS:
        async with serving_gateway(kind, sim, scheduler) as url:
            answers.append(await exchange(url, CASES[case]))
    (status, headers, body), (lean_status, lean_headers, lean_body) = answers
    assert lean_status == status
    assert lean_headers.get("content-type") == headers.get("content-type")
    if case == "chat":
        # The simulator's ids and times differ call to call; the rest is the same answer.
        assert json.loads(lean_body).keys() == json.loads(body).keys()
    else:
        assert lean_body == body
    assert "date" in lean_headers
    assert KEY not in lean_body.decode(errors="replace")


async def test_head_of_a_get_route_has_no_body(sim: Simulator, scheduler: Scheduler) -> None:
    async with serving_gateway("lean", sim, scheduler) as url:
        status, headers, _ = await exchange(url, get("/healthz", "HEAD"), head_only=True)
    assert status == 200
    assert headers["content-length"] == "15"


async def test_pipelined_requests_are_answered_in_order(
    sim: Simulator, scheduler: Scheduler
) -> None:
    async with serving_gateway("lean", sim, scheduler) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # A slow model call first, then two quick ones behind it on the same connection.
        writer.write(post("/v1/chat/completions", CHAT) + get("/v1/nothing") + get("/healthz"))
        statuses = [(await read_response(reader))[0] for _ in range(3)]
        writer.close()
    assert statuses == [200, 404, 200]


async def test_expect_100_continue(sim: Simulator, scheduler: Scheduler) -> None:
    async with serving_gateway("lean", sim, scheduler) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = post("/v1/chat/completions", CHAT, extra="Expect: 100-continue\r\n")
        head, body = request.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        assert (await read_response(reader))[0] == 100
        writer.write(body)
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_a_malformed_request_is_400_and_closes(sim: Simulator, scheduler: Scheduler) -> None:
    async with serving_gateway("lean", sim, scheduler) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GARBAGE\x00 / HTTP/9\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert status == 400
        assert headers["connection"] == "close"
        assert await reader.read() == b""
        writer.close()


async def test_http_10_gets_its_answer_and_the_connection_closed(
    sim: Simulator, scheduler: Scheduler
) -> None:
    async with serving_gateway("lean", sim, scheduler) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, b'{"status":"ok"}')
        assert headers["connection"] == "close"
        assert await reader.read() == b""
        writer.close()


async def test_a_client_that_leaves_has_its_call_cancelled() -> None:
    """As aiohttp's handler_cancellation: a queued call whose client left is never sent."""
    config = SimulatorConfig(latency=1.0, latency_jitter=0.0, requests_per_second=None, api_key=KEY)
    async with (
        Simulator(config) as sim,
        Scheduler(api_key=KEY, base_url=sim.base_url, max_concurrency=1) as scheduler,
        serving_gateway("lean", sim, scheduler) as url,
    ):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        # The first call holds the only slot for a second; the second waits behind it.
        first = asyncio.create_task(exchange(url, post("/v1/chat/completions", CHAT)))
        await asyncio.sleep(0.3)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post("/v1/chat/completions", CHAT))
        await writer.drain()
        await asyncio.sleep(0.2)
        assert scheduler.statistics().queued == 1
        writer.close()
        await writer.wait_closed()
        assert (await first)[0] == 200
        await asyncio.sleep(0.3)
        assert scheduler.statistics().queued == 0
        assert sim.stats.requests == 1


async def test_shutdown_drains_the_calls_in_flight_then_closes() -> None:
    config = SimulatorConfig(latency=0.5, latency_jitter=0.0, requests_per_second=None, api_key=KEY)
    async with Simulator(config) as sim, Scheduler(api_key=KEY, base_url=sim.base_url) as scheduler:
        gateway = Gateway(
            scheduler, upstream_url=sim.base_url, api_key=KEY, client_keys=[CLIENT_KEY]
        )
        lean = LeanServer(gateway, max_body_bytes=1024)
        port = await lean.start("127.0.0.1", 0, backlog=16)
        url = f"http://127.0.0.1:{port}/v1"
        call = asyncio.create_task(exchange(url, post("/v1/chat/completions", CHAT)))
        await asyncio.sleep(0.2)
        gateway.stop_accepting()
        await lean.shutdown(5.0)
        status, _, _ = await call
        assert status == 200
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_headers_that_never_end_are_431_and_close(
    sim: Simulator, scheduler: Scheduler
) -> None:
    """The parser holds a request's head whole until it ends: it is bounded."""
    async with serving_gateway("lean", sim, scheduler) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Long: ")
        for _ in range(20):
            writer.write(b"x" * 8192)
            await writer.drain()
        status, headers, _ = await asyncio.wait_for(read_response(reader), 5.0)
        assert status == 431
        assert headers["connection"] == "close"
        writer.close()


async def test_the_lean_gateway_calls_upstream_on_the_lean_client(
    request: pytest.FixtureRequest, gateway_url: str, scheduler: Scheduler
) -> None:
    """As in ``serve``: the fixtures pair the lean server with the lean client upstream."""
    lean = request.node.callspec.params["gateway_url"] == "lean"
    assert isinstance(scheduler._transport, LeanTransport) is lean
    status, _, body = await exchange(gateway_url, post("/v1/chat/completions", CHAT))
    assert status == 200, body
