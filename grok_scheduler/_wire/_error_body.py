"""Error bodies: ``(code, message)`` out of whatever a failed call's body holds.

xAI's flat ``{"code", "error"}``, ``{"error": "..."}``, OpenAI's nested
``{"error": {"message", "type", "code"}}``, HTML from proxies, plain text and empty bodies.
Bounded in size, always redacted, never raises.
"""

from __future__ import annotations

import html
import json
import re

from .._errors import redact

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_TEXT_REASON_CHARS",
    "decode_body",
    "parse_error_body",
    "read_error",
]

MAX_BODY_BYTES = 64 * 1024
"""How much of a response body is decoded and kept; an error body is never legitimately bigger."""

MAX_TEXT_REASON_CHARS = 200
"""How much of a text (not JSON) body, or of an exception's text, makes a message."""

_MAX_MESSAGE_CHARS = 1000

_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def _as_bytes(body: object) -> bytes:
    """Accept what callers actually pass (bytes-like, str, None) without ever raising."""
    if isinstance(body, bytes):
        return body[:MAX_BODY_BYTES]
    if isinstance(body, bytearray | memoryview):
        return bytes(body[:MAX_BODY_BYTES])
    if isinstance(body, str):
        return body[:MAX_BODY_BYTES].encode("utf-8", "replace")
    return b""


def decode_body(body: object) -> tuple[str, object]:
    """Return (capped, redacted text, parsed JSON or None) of a response body."""
    text = redact(_as_bytes(body).decode("utf-8", "replace"))
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return text, None
    try:
        return text, json.loads(stripped)
    except (ValueError, RecursionError):
        return text, None


def _short(value: object, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """A message string from any JSON value, bounded in length."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = repr(type(value))
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_text(value: object) -> str | None:
    """A code field as text; JSON null or an empty string means no code."""
    if value is None or value == "":
        return None
    return _short(value, 200)


def _from_json(parsed: object) -> tuple[str | None, str] | None:
    """(code, message) from the JSON shapes seen in the wild, or None when unrecognised."""
    if not isinstance(parsed, dict):
        return None if parsed is None else (None, _short(parsed))
    error = parsed.get("error")
    if isinstance(error, dict):  # OpenAI: {"error": {"message", "type", "code"}}
        code = _code_text(error.get("code")) or _code_text(error.get("type"))
        message = error.get("message")
        return code, _short(message if message is not None else error)
    code = _code_text(parsed.get("code"))
    for key in ("error", "message", "detail", "msg"):
        value = parsed.get(key)
        if value is not None and value != "":
            return code, _short(value)
    return code, _short(parsed) if parsed else ""


def _text_reason(text: str) -> str:
    """A short reason from a non-JSON body: HTML without tags, whitespace collapsed."""
    text = _SCRIPT.sub(" ", text)
    text = html.unescape(_TAG.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    return text[:MAX_TEXT_REASON_CHARS]


def read_error(text: str, parsed: object) -> tuple[str | None, str]:
    """``(code, message)`` from what :func:`decode_body` returned; the message is redacted."""
    found = _from_json(parsed)
    if found is not None:
        return found[0], redact(found[1])
    return None, redact(_text_reason(text))


def parse_error_body(body: bytes) -> tuple[str | None, str]:
    """Return ``(code, message)`` from an error body.

    Understands xAI's flat ``{"code", "error"}``, ``{"error": "..."}``, OpenAI's nested
    ``{"error": {"message", "type", "code"}}``; for HTML or plain text the message is the first
    200 characters of text without tags. The message is ``""`` when the body says nothing, and is
    always redacted.
    """
    text, parsed = decode_body(body)
    return read_error(text, parsed)
