"""Reading a response: the answer in a successful body (either endpoint) and the request id.

Usage figures are read by :meth:`grok_scheduler.Usage.from_body`, next to the value they fill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import redact
from .._models import Endpoint

__all__ = ["REQUEST_ID_HEADERS", "extract_answer", "read_request_id"]

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-xai-request-id")
"""Where servers put the request id, the first non-empty one wins (xAI, OpenAI-style, gateways)."""

_MAX_REQUEST_ID_CHARS = 200


def read_request_id(headers: Mapping[str, str]) -> str | None:
    """The server's request id from response headers, redacted and bounded; None when absent.

    Header names match case-insensitively even in a plain ``dict``. Never raises: a request id
    is a courtesy for support tickets, never a reason to lose the answer or the error.
    """
    try:
        value = _first_request_id(headers)
    except Exception:  # a broken mapping must not turn a call into a crash
        return None
    # The value travels into errors and result files: mask anything shaped like a key.
    return redact(value)[:_MAX_REQUEST_ID_CHARS] if value else None


def _first_request_id(headers: Mapping[str, str]) -> str | None:
    # Fast path: aiohttp's headers are case-insensitive, and most dicts use these spellings.
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    found: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower()
        if name in REQUEST_ID_HEADERS and value and name not in found:
            found[name] = str(value)
    return next((found[name] for name in REQUEST_ID_HEADERS if name in found), None)


def extract_answer(body: Mapping[str, Any], endpoint: Endpoint) -> tuple[str, str | None]:
    """(text, finish reason) of a 2xx body; ValueError when it has no answer in it."""
    if endpoint is Endpoint.RESPONSES:
        return _responses_text(body)
    return _chat_text(body)


def _chat_text(body: Mapping[str, Any]) -> tuple[str, str | None]:
    choices = body.get("choices")
    if type(choices) is not list or not choices or type(choices[0]) is not dict:
        raise ValueError("no 'choices' in the response")
    choice = choices[0]
    message = choice.get("message")
    content: object = None
    if type(message) is dict:
        content = message.get("content")
    elif "text" in choice:
        content = choice.get("text")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ValueError("the first choice's content is not text")
    reason = choice.get("finish_reason")
    return content, reason if isinstance(reason, str) else None


def _responses_text(body: Mapping[str, Any]) -> tuple[str, str | None]:
    output = body.get("output")
    if not isinstance(output, list):
        raise ValueError("no 'output' in the response")
    parts: list[str] = []
    for item in output:
        if not isinstance(item, Mapping) or item.get("type") != "message":
            continue
        content = item.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "output_text":
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
    status = body.get("status")
    return "".join(parts), status if isinstance(status, str) else None
