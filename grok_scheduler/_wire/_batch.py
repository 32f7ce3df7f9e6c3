"""The Batch API's wire shapes: every body the client sends or reads, guesses kept here only.

From xAI's docs (docs.x.ai, developers/advanced-api-usage/batch-api) and the types of xAI's
own TypeScript SDK (github.com/xai-org/xai-sdk-ts, ``src/types.ts``, ``Batch*``):

* create: ``POST /v1/batches`` with ``{"name"}``; the answer carries ``batch_id``.
* add: ``POST /v1/batches/{id}/requests`` with ``{"batch_requests": [{"batch_request_id",
  "batch_request": {"chat_get_completion": <chat body>}}]}``; at most 25 MB a call, 100 calls
  per 30 s per team, 1 creation per second per team; a ``batch_request_id`` is unique within
  its batch.
* status: ``GET /v1/batches/{id}``: ``state`` with ``num_requests``, ``num_pending``,
  ``num_success``, ``num_error``, ``num_cancelled`` (also ``cancel_time``,
  ``cancel_by_xai_message`` and ``expire_time``, which the road does not need).
* results: ``GET /v1/batches/{id}/results?limit=&pagination_token=`` (100 a page; the token
  comes back while more follow): ``{"results": [{"batch_request_id", "batch_result":
  {"response": {"chat_get_completion": <chat.completion>}}}]}``; a failed request's
  ``batch_result`` is ``{"error": "<message>"}``.
* cancel: ``POST /v1/batches/{id}:cancel``.

GUESSED (the docs and the SDK are silent; change them here and nowhere else): an error given
as an object (its ``message``) or as a top-level ``error_message`` is read too; counts missing
from ``state`` are read from the top level; a batch is finished when ``num_pending`` is 0 (a
batch cancelled by xAI or expired is assumed to count its open requests as cancelled, as a
batch cancelled by the caller does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADD_CALLS_PER_WINDOW",
    "ADD_WINDOW_SECONDS",
    "CREATION_INTERVAL",
    "MAX_ADD_PAYLOAD_BYTES",
    "PRICE_FACTOR",
    "BatchItem",
    "BatchStatus",
    "ResultsPage",
    "add_requests_chunks",
    "batch_id_of",
    "batch_request",
    "cancel_path",
    "read_results",
    "read_status",
    "requests_path",
    "results_path",
    "status_path",
]

MAX_ADD_PAYLOAD_BYTES = 25 * 1024 * 1024
ADD_CALLS_PER_WINDOW = 100
ADD_WINDOW_SECONDS = 30.0
CREATION_INTERVAL = 1.0
PRICE_FACTOR = 0.5
"""A batch request's price relative to the same call online (the docs: 50% off); the answer's
own ``cost_in_usd_ticks`` is what is billed, this only prices the road not taken."""
PAGE_SIZE = 100
CREATE_PATH = "batches"


def status_path(batch_id: str) -> str:
    return f"batches/{batch_id}"


def requests_path(batch_id: str) -> str:
    return f"batches/{batch_id}/requests"


def results_path(batch_id: str, token: str | None) -> str:
    query = f"?limit={PAGE_SIZE}" + (f"&pagination_token={token}" if token else "")
    return f"batches/{batch_id}/results{query}"


def cancel_path(batch_id: str) -> str:
    return f"batches/{batch_id}:cancel"


def batch_request(custom_id: str, chat_body: Mapping[str, Any]) -> bytes:
    """One encoded entry of ``batch_requests``."""
    entry = {"batch_request_id": custom_id, "batch_request": {"chat_get_completion": chat_body}}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()


def add_requests_chunks(
    entries: Iterable[tuple[str, bytes]],
    *,
    max_bytes: int = MAX_ADD_PAYLOAD_BYTES,
    max_count: int = 10_000,
) -> Iterator[tuple[list[str], bytes]]:
    """Group encoded entries into add-requests bodies under ``max_bytes`` each.

    Yields ``(custom_ids, body)``. An entry too large for any body is yielded alone (the
    server refuses it; the caller records that line as failed rather than loop on it).
    """
    head, tail = b'{"batch_requests":[', b"]}"
    ids: list[str] = []
    parts: list[bytes] = []
    size = len(head) + len(tail)
    for custom_id, entry in entries:
        grown = size + len(entry) + (1 if parts else 0)
        if parts and (grown > max_bytes or len(parts) >= max_count):
            yield ids, head + b",".join(parts) + tail
            ids, parts, size = [], [], len(head) + len(tail)
            grown = size + len(entry)
        ids.append(custom_id)
        parts.append(entry)
        size = grown
    if parts:
        yield ids, head + b",".join(parts) + tail


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A batch's counts."""

    requests: int
    pending: int
    succeeded: int
    failed: int
    cancelled: int

    @property
    def finished(self) -> bool:
        """Nothing of the batch is still to be answered."""
        return self.pending == 0


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request's result: the chat completion, or why it failed."""

    custom_id: str
    completion: Mapping[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ResultsPage:
    items: list[BatchItem]
    next_token: str | None


def _object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("the Batch API answered with something other than an object")
    return value


def batch_id_of(raw: bytes) -> str:
    """The id in a create answer (``batch_id``; ``id`` as some answers spell it)."""
    body = _object(raw)
    found = body.get("batch_id", body.get("id"))
    if not isinstance(found, str) or not found:
        raise ValueError("the create-batch answer names no batch_id")
    return found


def _count(state: Mapping[str, Any], top: Mapping[str, Any], name: str) -> int:
    value = state.get(name, top.get(name, 0))
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_status(raw: bytes) -> BatchStatus:
    """Counts from a status answer."""
    body = _object(raw)
    state = body.get("state")
    state = state if isinstance(state, dict) else {}
    return BatchStatus(
        requests=_count(state, body, "num_requests"),
        pending=_count(state, body, "num_pending"),
        succeeded=_count(state, body, "num_success"),
        failed=_count(state, body, "num_error"),
        cancelled=_count(state, body, "num_cancelled"),
    )


def _item(entry: Any) -> BatchItem | None:
    if not isinstance(entry, dict):
        return None
    custom_id = entry.get("batch_request_id")
    if not isinstance(custom_id, str):
        return None
    result = entry.get("batch_result")
    result = result if isinstance(result, dict) else {}
    response = result.get("response")
    completion = response.get("chat_get_completion") if isinstance(response, dict) else None
    if isinstance(completion, dict):
        return BatchItem(custom_id, completion, None)
    error = result.get("error", entry.get("error_message"))
    if isinstance(error, dict):
        error = error.get("message", json.dumps(error))
    return BatchItem(custom_id, None, str(error) if error else "the batch gave no result")


def read_results(raw: bytes) -> ResultsPage:
    """One page of results and the token of the next (``None`` at the end)."""
    body = _object(raw)
    entries = body.get("results")
    items = [i for i in map(_item, entries if isinstance(entries, list) else []) if i]
    token = body.get("pagination_token")
    return ResultsPage(items, token if isinstance(token, str) and token else None)
