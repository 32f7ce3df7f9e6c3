"""Durable result lines: the success and failure line shapes and the appending writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grok_scheduler import AuthenticationError, Result, Usage
from grok_scheduler.cli._lines import InvalidLineError, LineRef
from grok_scheduler.cli._output import OutputWriter, failure_line, success_line


# -- result lines ----------------------------------------------------------------------------
def test_success_line_has_the_batch_output_shape() -> None:
    """A success line: id, custom_id, response with status, request id and body, error null."""
    body = {"id": "req-1", "choices": []}
    result = Result(
        text="t",
        usage=Usage(),
        model="m",
        request_id="req-1",
        attempts=1,
        queued_seconds=0.0,
        in_flight_seconds=0.1,
        finish_reason="stop",
        body=body,
    )
    record = json.loads(success_line(LineRef("a", 1, {"x": 1}), result))
    assert record == {
        "id": "req-1",
        "custom_id": "a",
        "response": {"status_code": 200, "request_id": "req-1", "body": body},
        "error": None,
        "metadata": {"x": 1},
    }


def test_failure_line_carries_type_code_status_attempts_line_and_masks_keys() -> None:
    """A failure line names the error class, code, status, attempts and line; keys are masked."""
    error = AuthenticationError(
        "Incorrect API key provided: xai-abcdefghijklmnopqrstuvwxyz",
        status_code=400,
        code="Client specified an invalid argument",
        request_id="req-9",
        body={"error": "key xai-abcdefghijklmnopqrstuvwxyz"},
    )
    error.attempts = 1
    text = failure_line(LineRef("b", 4), error)
    assert b"abcdefghijklmnop" not in text
    record = json.loads(text)
    assert record["custom_id"] == "b"
    assert record["response"]["status_code"] == 400
    assert record["error"] == {
        "type": "AuthenticationError",
        "code": "Client specified an invalid argument",
        "message": "Incorrect API key provided: xai-***",
        "status_code": 400,
        "attempts": 1,
        "line": 4,
    }


def test_failure_line_of_a_bad_input_line_has_no_response() -> None:
    """A bad input line's error has response null and attempts 0."""
    record = json.loads(failure_line(LineRef("line-3", 3), InvalidLineError("bad", code="x")))
    assert record["response"] is None
    assert record["error"]["type"] == "InvalidLineError"
    assert record["error"]["attempts"] == 0


def test_lone_surrogates_still_make_valid_json() -> None:
    """Text the API could not have sent as UTF-8 still yields a parseable line."""
    record = json.loads(failure_line(LineRef("c", 1), InvalidLineError("\udc80 odd", code="x")))
    assert record["error"]["message"].endswith("odd")


# -- durable appends -------------------------------------------------------------------------------
def test_writer_appends_whole_lines(tmp_path: Path) -> None:
    """Lines are appended after what is there, and closing syncs and closes the file."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"old\n")
    writer = OutputWriter(path, sync_lines=2)
    for n in range(5):
        writer.write(b"%d\n" % n)
    writer.close()
    assert path.read_bytes() == b"old\n0\n1\n2\n3\n4\n"
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"5\n")
