"""Faults inside a 200 stream, acted out over a real socket.

| kind                 | what a streaming client receives                                       |
|----------------------|------------------------------------------------------------------------|
| ``stream_hang_first``| 200 and headers, then silence for ``hang_seconds`` (``stop()`` aborts)  |
| ``stream_hang_mid``  | the first half of the chunks, then silence                             |
| ``stream_reset_mid`` | the first half of the chunks, then the connection is aborted           |
| ``stream_error_first``| an error frame ``{"code","error"}`` (503 at capacity) as the first frame |
| ``stream_error_mid`` | half the chunks, then an ``Internal error`` frame, then the end         |
| ``stream_no_done``   | every delta, but neither the usage chunk nor ``[DONE]``                 |

A request that did not ask for a stream is served normally. Like other faults these are decided
before the rate limiter and charge no credit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from ._protocol import INTERNAL, UNAVAILABLE

__all__ = ["STREAM_FAULT_KINDS", "act_stream_fault"]

STREAM_FAULT_KINDS: frozenset[str] = frozenset(
    {
        "stream_hang_first",
        "stream_hang_mid",
        "stream_reset_mid",
        "stream_error_first",
        "stream_error_mid",
        "stream_no_done",
    }
)


def _frame(code: str, message: str) -> bytes:
    return b"data: " + json.dumps({"code": code, "error": message}).encode() + b"\n\n"


async def act_stream_fault(
    kind: str,
    request: web.Request,
    chunks: list[bytes],
    headers: dict[str, str],
    *,
    stopping: asyncio.Event,
    hang_seconds: float,
) -> web.StreamResponse:
    """Write a 200 stream that fails the way ``kind`` says; ``chunks`` is the healthy stream."""
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    half = chunks[: max(1, (len(chunks) - 2) // 2)]
    if kind == "stream_error_first":
        await response.write(_frame(UNAVAILABLE, "The model is at capacity."))
    elif kind == "stream_error_mid":
        for chunk in half:
            await response.write(chunk)
        await response.write(_frame(INTERNAL, "Internal error"))
    elif kind == "stream_no_done":
        for chunk in chunks[:-2]:
            await response.write(chunk)
    else:
        for chunk in half if kind != "stream_hang_first" else []:
            await response.write(chunk)
        if kind != "stream_reset_mid":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), hang_seconds)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response
