"""MockTransport: a handler instead of the network, timeouts in virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from grok_scheduler import APITimeoutError, FakeClock, MockTransport, TransportResponse
from grok_scheduler._wire._classify import classify_exception


async def test_handler_gets_path_and_json_body() -> None:
    """The handler sees the endpoint path and the decoded body; its answer is returned."""
    seen: list[tuple[str, dict[str, Any]]] = []

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        seen.append((path, body))
        return TransportResponse(status=200, body=b"{}", headers={"X-Request-Id": "r"})

    transport = MockTransport(handler)
    response = await transport.send("responses", b'{"model":"m"}', timeout=1.0)
    assert seen == [("responses", {"model": "m"})]
    assert (response.status, response.request_id, transport.calls) == (200, "r", 1)


async def test_timeout_on_the_fake_clock() -> None:
    """A handler slower than the timeout raises TimeoutError at exactly the timeout, retried."""
    clock = FakeClock()

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        await clock.sleep(10.0)
        return TransportResponse(status=200, body=b"{}")

    transport = MockTransport(handler, clock=clock)
    call = asyncio.ensure_future(transport.send("responses", b"{}", timeout=2.0))
    await clock.advance(1.999)
    assert not call.done()
    await clock.advance(0.001)
    assert call.done()
    with pytest.raises(TimeoutError) as raised:
        call.result()
    verdict = classify_exception(raised.value)
    assert type(verdict.error) is APITimeoutError
    assert verdict.retryable is True
