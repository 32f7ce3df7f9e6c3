"""A line on the batch road: the chat body it sends, and its answer as a :class:`Result`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._errors import InvalidJobError
from .._models import Endpoint, Result, Usage
from .._wire._batch import BatchItem
from .._wire._request import request_body
from .._wire._response import extract_answer

__all__ = ["batch_body", "batch_result", "unanswered"]


def batch_body(prompt: Any, options: Mapping[str, Any], default_model: str) -> dict[str, Any]:
    """The chat body of a job with ``submit`` options, as the online road would send it."""
    extra: dict[str, Any] = dict(options.get("extra_body") or {})
    if options.get("temperature") is not None:
        extra["temperature"] = options["temperature"]
    return request_body(
        endpoint=Endpoint.CHAT_COMPLETIONS,
        model=options.get("model") or default_model,
        prompt=prompt,
        max_tokens=options.get("max_tokens"),
        options=extra,
    )


def batch_result(item: BatchItem, metadata: Any) -> Result | InvalidJobError:
    """The :class:`Result` of one batch answer (or the error of a failed one)."""
    if item.completion is None:
        return InvalidJobError(f"the batch could not answer: {item.error}")
    body = item.completion
    text, finish = extract_answer(body, Endpoint.CHAT_COMPLETIONS)
    request_id = body.get("id")
    return Result(
        text=text,
        usage=Usage.from_body(body),
        model=body.get("model") if isinstance(body.get("model"), str) else None,
        request_id=request_id if isinstance(request_id, str) else None,
        attempts=1,
        queued_seconds=0.0,
        in_flight_seconds=0.0,
        finish_reason=finish,
        body=body,
        metadata=metadata,
        raw_body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
    )


def unanswered() -> InvalidJobError:
    """The error of a line whose batch ended without answering it."""
    return InvalidJobError("the batch ended without an answer (cancelled?)")
