"""Reading the answer out of a successful response body, for either endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._models import Endpoint

__all__ = ["extract_answer"]


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
