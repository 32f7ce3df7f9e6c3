"""A raw stream as the SSE bytes an SDK reads: shared by the httpx transport and the gateway.

Frames are written as the server sent them (``data:`` lines only: the payloads carry their own
``type``, which is all openai-python reads). A stream that proved complete without ``[DONE]``
(a final usage chunk) gets one, as SDKs wait for it. A failure after the first frame cannot
change the status any more: it is written as an error frame (``{"error": {...}}``), which
openai-python raises as ``APIError`` and other SDKs as their stream error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from .._core._raw_stream import RawStream
from .._errors import APIError, SchedulerError, redact

__all__ = ["SSE_HEADERS", "sse_bytes"]

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
_DONE = "[DONE]"


def _frame(payload: str) -> bytes:
    return b"data: " + payload.encode() + b"\n\n"


def _error_frame(error: SchedulerError) -> bytes:
    status = error.status_code if isinstance(error, APIError) else None
    code = error.code if isinstance(error, APIError) else None
    inner = {"message": redact(str(error)), "type": type(error).__name__, "code": code}
    return _frame(json.dumps({"error": inner, "status": status}))


async def sse_bytes(raw: RawStream) -> AsyncIterator[bytes]:
    """The stream's frames, encoded; ends with ``[DONE]`` or an error frame."""
    last = ""
    try:
        async for payload in raw.frames():
            last = payload
            yield _frame(payload)
    except SchedulerError as exc:
        yield _error_frame(exc)
        return
    if last.strip() != _DONE:
        yield _frame(_DONE)
