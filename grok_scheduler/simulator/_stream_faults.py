"""Faults inside a 200 stream, acted out over a real socket.

| kind                 | what a streaming client receives                                       |
|----------------------|------------------------------------------------------------------------|
| ``stream_hang_first``| 200 and headers, then silence for ``hang_seconds`` (``stop()`` aborts)  |
| ``stream_hang_mid``  | the first half of the chunks, then silence                             |
| ``stream_reset_mid`` | the first half of the chunks, then the connection is aborted           |
| ``stream_error_first``| an error frame ``{"code","error"}`` (503 at capacity) as the first frame |
| ``stream_error_mid`` | half the chunks, then an ``Internal error`` frame, then the end         |
| ``stream_no_done``   | every delta, but neither the usage chunk nor ``[DONE]``                 |

Either endpoint (chat completions and responses) breaks its own stream this way. A request
that did not ask for a stream is served normally. Like other faults these are decided
before the rate limiter and charge no credit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ._protocol import INTERNAL, UNAVAILABLE

__all__ = ["STREAM_FAULT_KINDS", "StreamPlan", "act_stream_fault", "plan_stream_fault"]

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


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """What a faulty stream sends (``sent``), then how it ends: ``end``, ``hang`` or ``reset``.

    A hang ends, after ``hang_seconds``, by aborting the connection. The plan is written once
    here and acted out by the socket server (:func:`act_stream_fault`) and ``VirtualServer``.
    """

    sent: list[bytes]
    then: Literal["end", "hang", "reset"]


def plan_stream_fault(kind: str, chunks: list[bytes]) -> StreamPlan:
    """How fault ``kind`` breaks the healthy stream ``chunks``."""
    half = chunks[: max(1, (len(chunks) - 2) // 2)]
    if kind == "stream_error_first":
        return StreamPlan([_frame(UNAVAILABLE, "The model is at capacity.")], "end")
    if kind == "stream_error_mid":
        return StreamPlan([*half, _frame(INTERNAL, "Internal error")], "end")
    if kind == "stream_no_done":
        return StreamPlan(chunks[:-2], "end")
    if kind == "stream_hang_first":
        return StreamPlan([], "hang")
    if kind == "stream_hang_mid":
        return StreamPlan(list(half), "hang")
    return StreamPlan(list(half), "reset")


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
    plan = plan_stream_fault(kind, chunks)
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    for chunk in plan.sent:
        await response.write(chunk)
    if plan.then == "end":
        await response.write_eof()
        return response
    if plan.then == "hang":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), hang_seconds)
    if request.transport is not None:
        request.transport.abort()
    return response
