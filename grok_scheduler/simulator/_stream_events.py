"""The server-sent events of a streamed answer, for either endpoint.

Chat completions stream ``chat.completion.chunk`` objects, the last one with ``usage``, then
``data: [DONE]`` (:func:`~._protocol.chat_chunks`). The Responses API streams typed events, as
OpenAI's and xAI's do: ``response.created``, ``response.in_progress``, the output item and
content part opened, one ``response.output_text.delta`` per word, their ``.done`` events, and
``response.completed`` (or ``response.incomplete`` when ``max_output_tokens`` cut the answer)
carrying the whole response object with its usage. That object is exactly the non-streamed
answer, so a client assembling the stream gets what ``stream=false`` would have returned.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ._protocol import ModelCall, chat_chunks, responses_body
from ._world import Endpoint

__all__ = ["write_stream", "responses_chunks", "stream_chunks"]


def _event(kind: str, number: int, fields: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": number, **fields})
    return f"event: {kind}\ndata: {data}\n\n".encode()


def responses_chunks(call: ModelCall, request_id: str, created: int) -> list[bytes]:
    """Server-sent events of a streamed ``/v1/responses`` answer, ending with the response."""
    final = responses_body(call, request_id, created)
    opening = {**final, "status": "in_progress", "output": [], "usage": None}
    opening["incomplete_details"] = None
    message = final["output"][-1]
    item_id = message["id"]
    where = {"item_id": item_id, "output_index": len(final["output"]) - 1, "content_index": 0}
    empty_item = {**message, "status": "in_progress", "content": []}
    empty_part = {"type": "output_text", "text": "", "annotations": []}
    words = call.answer.split(" ")
    steps: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": opening}),
        ("response.in_progress", {"response": opening}),
        ("response.output_item.added", {"output_index": where["output_index"], "item": empty_item}),
        ("response.content_part.added", {**where, "part": empty_part}),
    ]
    steps += [
        ("response.output_text.delta", {**where, "delta": w if i == 0 else " " + w})
        for i, w in enumerate(words)
    ]
    steps += [
        ("response.output_text.done", {**where, "text": call.answer}),
        ("response.content_part.done", {**where, "part": message["content"][0]}),
        ("response.output_item.done", {"output_index": where["output_index"], "item": message}),
    ]
    last = "response.incomplete" if call.capped else "response.completed"
    steps.append((last, {"response": final}))
    return [_event(kind, number, fields) for number, (kind, fields) in enumerate(steps)]


def stream_chunks(
    endpoint: Endpoint, call: ModelCall, request_id: str, created: int
) -> list[bytes]:
    """The healthy stream of ``call`` on ``endpoint``, one SSE event per element."""
    render = chat_chunks if endpoint == "chat" else responses_chunks
    return render(call, request_id, created)


async def write_stream(
    request: web.Request,
    chunks: list[bytes],
    gap: float,
    request_id: str,
    extra: dict[str, str] | None,
) -> web.StreamResponse:
    """Write a healthy stream: the first chunk now, each later one ``gap`` seconds on."""
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "x-request-id": request_id,
    }
    if extra:
        headers.update(extra)
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    for number, chunk in enumerate(chunks):
        if number and gap > 0:
            await asyncio.sleep(gap)
        await response.write(chunk)
    await response.write_eof()
    return response
