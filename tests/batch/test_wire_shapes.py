"""The Batch API shapes as xAI's docs and its own SDK type them, read by the one wire module."""

from __future__ import annotations

import json

from grok_scheduler._wire import _batch as wire


def test_a_failed_request_reads_its_error_string() -> None:
    """``batch_result: {"error": string}`` (xai-sdk-ts ``BatchResult``) is a failed line."""
    page = {
        "results": [
            {"batch_request_id": "a", "batch_result": {"error": "model not found"}},
            {
                "batch_request_id": "b",
                "batch_result": {"response": {"chat_get_completion": {"id": "c", "choices": []}}},
            },
        ],
        "pagination_token": "next",
    }
    read = wire.read_results(json.dumps(page).encode())
    assert read.next_token == "next"
    failed, answered = read.items
    assert (failed.custom_id, failed.completion, failed.error) == ("a", None, "model not found")
    assert answered.completion == {"id": "c", "choices": []} and answered.error is None


def test_status_counts_from_state() -> None:
    """``state.num_*`` are the counts; the cancel and expiry times do not change them."""
    body = {
        "batch_id": "b1",
        "name": "n",
        "cancel_time": "2026-01-01T00:00:00Z",
        "cancel_by_xai_message": None,
        "state": {
            "num_requests": 5,
            "num_pending": 0,
            "num_success": 3,
            "num_error": 1,
            "num_cancelled": 1,
        },
    }
    status = wire.read_status(json.dumps(body).encode())
    assert (status.requests, status.succeeded, status.failed, status.cancelled) == (5, 3, 1, 1)
    assert status.finished
    assert wire.batch_id_of(json.dumps(body).encode()) == "b1"


def test_results_are_paged_with_limit_and_pagination_token() -> None:
    """The SDK's query: ``limit`` and ``pagination_token``."""
    assert wire.results_path("b1", None) == "batches/b1/results?limit=100"
    assert wire.results_path("b1", "t") == "batches/b1/results?limit=100&pagination_token=t"
