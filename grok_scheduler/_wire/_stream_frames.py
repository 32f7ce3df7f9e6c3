"""One streamed answer, frame by frame: deltas out, errors typed, the whole body assembled.

A streamed call is read with a :class:`StreamAssembler` per attempt. Each SSE ``data`` payload
gives a :class:`Delta` (answer and reasoning text), nothing, or an :class:`ErrorFrame`: xAI can
answer 200 and then send an error object as the first or a later frame, flat
``{"code", "error"}``, OpenAI-style ``{"error": {...}}`` or ``{"type": "error", ...}``. The
error frame carries the HTTP status its code stands for, so the one response classifier types it.

At the end, :meth:`StreamAssembler.body` is the JSON a non-streamed call would have returned
(``chat.completion`` or ``response``), so a streamed result reads exactly like a submitted one:
every field the chunks carry (``system_fingerprint``, ``refusal``, ``reasoning_content``,
``usage``) is put where the plain answer has it.
A stream is complete only once it says so (``[DONE]``, the final usage chunk, or
``response.completed``); anything less is a cut connection, never a success.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._models import Endpoint

__all__ = ["Delta", "ErrorFrame", "StreamAssembler", "status_for_code", "stream_request"]

# xAI's gRPC status texts (and OpenAI's error types) -> the HTTP status they travel with.
_CODE_STATUS: tuple[tuple[str, int], ...] = (
    ("invalid argument", 400),
    ("invalid_request", 400),
    ("unauthenticated", 401),
    ("permission", 403),
    ("not found", 404),
    ("not_found", 404),
    ("exhausted", 429),
    ("rate_limit", 429),
    ("unavailable", 503),
    ("overloaded", 503),
    ("deadline", 504),
)
_DEFAULT_ERROR_STATUS = 500


def stream_request(body: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """``body`` asking for a stream; chat also asks for usage in the final chunk."""
    body["stream"] = True
    if endpoint is Endpoint.CHAT_COMPLETIONS:
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        # Settling needs the real count; a caller's explicit choice still wins.
        options.setdefault("include_usage", True)
        body["stream_options"] = options
    return body


def status_for_code(code: object) -> int:
    """The HTTP status an in-stream error's code stands for (500 when unknown: transient)."""
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    text = str(code or "").lower()
    for marker, status in _CODE_STATUS:
        if marker in text:
            return status
    return _DEFAULT_ERROR_STATUS


@dataclass(frozen=True, slots=True)
class Delta:
    """New answer text and reasoning text from one frame (either may be empty)."""

    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """An error sent inside a 200 stream, as the status and body a non-streamed error has."""

    status: int
    body: bytes


def _error_frame(frame: dict[str, Any]) -> ErrorFrame | None:
    """The error a frame carries, or None for an ordinary frame."""
    kind = frame.get("type")
    if kind == "response.failed":
        response = frame.get("response")
        inner = response.get("error") if isinstance(response, dict) else None
        inner = inner if isinstance(inner, dict) else {}
        flat = {"code": inner.get("code"), "error": inner.get("message") or "response failed"}
        return ErrorFrame(status_for_code(flat["code"]), json.dumps(flat).encode())
    if kind != "error" and ("error" not in frame or "choices" in frame):
        return None
    error = frame.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or frame.get("code")
        message = error.get("message") or error.get("error")
    else:
        code = frame.get("code")
        message = error if error is not None else frame.get("message")
    flat = {"code": code, "error": message if message is not None else "error in stream"}
    status = frame.get("status") if isinstance(frame.get("status"), int) else None
    return ErrorFrame(status or status_for_code(code), json.dumps(flat).encode())


class StreamAssembler:
    """Reads one streamed answer of ``endpoint`` and rebuilds its non-streamed body."""

    __slots__ = (
        "_endpoint",
        "_finish_reason",
        "_head",
        "_reasoning",
        "_refusal",
        "_response",
        "_text",
        "done",
        "usage",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._text: list[str] = []
        self._reasoning: list[str] = []
        # None until a delta names the refusal field; then its text so far ("" for null).
        self._refusal: list[str] | None = None
        self._finish_reason: str | None = None
        self._head: dict[str, Any] = {}
        self._response: dict[str, Any] | None = None
        self.done = False
        """The server said the answer is complete."""
        self.usage: dict[str, Any] | None = None
        """The usage the server reported (chat: the final chunk; responses: the last event)."""

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return "".join(self._text)

    @property
    def complete(self) -> bool:
        """True once the stream proved it ended: ``[DONE]``, final usage, or completed."""
        return self.done or (self._endpoint is Endpoint.CHAT_COMPLETIONS and self.usage is not None)

    def read(self, data: str) -> Delta | ErrorFrame | None:
        """Interpret one SSE data payload; ValueError when it is not JSON."""
        if data.strip() == "[DONE]":
            self.done = True
            return None
        frame = json.loads(data)
        if not isinstance(frame, dict):
            raise ValueError("a stream frame is not a JSON object")
        error = _error_frame(frame)
        if error is not None:
            return error
        if self._endpoint is Endpoint.RESPONSES:
            return self._responses_frame(frame)
        return self._chat_frame(frame)

    def _chat_frame(self, frame: dict[str, Any]) -> Delta | None:
        for name in ("id", "created", "model", "system_fingerprint"):
            if name in frame and name not in self._head:
                self._head[name] = frame[name]
        usage = frame.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = frame.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            self._finish_reason = reason
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return None
        if "refusal" in delta:
            refusal = delta["refusal"]
            self._refusal = self._refusal if self._refusal is not None else []
            if isinstance(refusal, str):
                self._refusal.append(refusal)
        text = delta.get("content")
        reasoning = delta.get("reasoning_content")
        return self._add(text if isinstance(text, str) else "", reasoning)

    def _responses_frame(self, frame: dict[str, Any]) -> Delta | None:
        kind = frame.get("type")
        if kind in ("response.completed", "response.incomplete"):
            response = frame.get("response")
            if isinstance(response, dict):
                self._response = response
                usage = response.get("usage")
                self.usage = usage if isinstance(usage, dict) else None
            self.done = True
            return None
        delta = frame.get("delta")
        if kind == "response.output_text.delta" and isinstance(delta, str):
            return self._add(delta, None)
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            return self._add("", delta)
        return None

    def _add(self, text: str, reasoning: object) -> Delta | None:
        reasoning = reasoning if isinstance(reasoning, str) else ""
        if not text and not reasoning:
            return None
        if text:
            self._text.append(text)
        if reasoning:
            self._reasoning.append(reasoning)
        return Delta(text, reasoning)

    def body(self) -> dict[str, Any]:
        """The body a non-streamed call would have returned for this answer."""
        if self._endpoint is Endpoint.RESPONSES:
            if self._response is not None:
                return self._response
            return {"object": "response", "status": "incomplete", "output": []}
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._refusal is not None:
            # A server that streamed the field sends it in its plain answer too (null if none).
            message["refusal"] = "".join(self._refusal) or None
        body: dict[str, Any] = {
            "id": self._head.get("id"),
            "object": "chat.completion",
            "created": self._head.get("created"),
            "model": self._head.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish_reason}],
        }
        if self.usage is not None:
            body["usage"] = self.usage
        if "system_fingerprint" in self._head:
            body["system_fingerprint"] = self._head["system_fingerprint"]
        return body

    def __repr__(self) -> str:
        return (
            f"StreamAssembler(endpoint={self._endpoint.value}, characters={len(self.text)}, "
            f"done={self.done}, usage={self.usage is not None})"
        )
