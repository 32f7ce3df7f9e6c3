"""One batch answer as the online road would have returned it: a :class:`Result` or an error."""

from __future__ import annotations

import json
from typing import Any

from .._errors import InvalidJobError
from .._models import Endpoint, Result, Usage
from .._wire._batch import BatchItem
from .._wire._response import extract_answer

__all__ = ["batch_result", "unanswered"]


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
