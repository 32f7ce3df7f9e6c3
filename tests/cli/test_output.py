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


# -- issue 13 regressions --------------------------------------------------------------------
def _result(raw: bytes, request_id: str = "req-7") -> Result:
    return Result(
        text="t",
        usage=Usage(),
        model="m",
        request_id=request_id,
        attempts=1,
        queued_seconds=0.0,
        in_flight_seconds=0.1,
        finish_reason="stop",
        body=json.loads(raw.decode("utf-8-sig")),
        raw_body=raw,
    )


def test_success_body_with_a_utf8_bom_is_written_as_valid_json() -> None:
    """A body that starts with a byte-order mark still makes a parseable line (no BOM in it)."""
    raw = b'\xef\xbb\xbf{"id":"req-7","choices":[]}'
    line = success_line(LineRef("a", 1), _result(raw))
    assert b"\xef\xbb\xbf" not in line
    assert json.loads(line)["response"]["body"] == {"id": "req-7", "choices": []}


def test_plain_shape_id_is_the_users_id_and_the_request_id_stays_in_response() -> None:
    """The plain shape's ``id`` comes back as the user's; the server's id only as request_id."""
    ref = LineRef("mine-1", 1, echo_id=True)
    record = json.loads(success_line(ref, _result(b'{"choices":[]}')))
    assert record["id"] == "mine-1" and record["response"]["request_id"] == "req-7"
    failure = json.loads(failure_line(ref, InvalidLineError("bad", code="x")))
    assert failure["id"] == "mine-1"


def test_lines_carry_the_request_hash_of_their_input_line() -> None:
    """Success and failure lines record the fingerprint of the request they answer."""
    ref = LineRef("a", 1, request_hash="0123456789abcdef")
    assert json.loads(success_line(ref, _result(b"{}")))["request_hash"] == "0123456789abcdef"
    failure = failure_line(ref, InvalidLineError("bad", code="x"))
    assert json.loads(failure)["request_hash"] == "0123456789abcdef"


def test_a_job_never_sent_says_so_without_another_calls_status() -> None:
    """A fatal stop's copy (attempts 0): status null, no response, no request id, "not sent"."""
    copy = AuthenticationError(
        "not sent: an earlier call failed with an error that fails every job: Incorrect API "
        "key provided: xai-abcdefghijklmnopqrstuvwxyz",
        status_code=400,
        request_id="req-of-the-first-call",
    )
    record = json.loads(failure_line(LineRef("n", 9), copy))
    assert record["response"] is None
    assert "req-of-the-first-call" not in json.dumps(record)
    error = record["error"]
    assert error["status_code"] is None and error["attempts"] == 0
    assert error["code"] == "not_sent" and error["message"].startswith("not sent")
    assert "abcdefghijklmnop" not in error["message"]


def test_ordered_writer_writes_on_arrival_then_sorts_this_runs_lines(tmp_path: Path) -> None:
    """--ordered: every line is on disk as it arrives; put_in_order sorts only this run's."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"earlier-9\nearlier-1\n")
    writer = OutputWriter(path, ordered=True)
    for key in (3, 1, 2):
        writer.write(b"line-%d\n" % key, key=key)
        assert path.read_bytes().endswith(b"line-%d\n" % key)  # durable before the order
    writer.close()
    writer.put_in_order()
    assert path.read_bytes() == b"earlier-9\nearlier-1\nline-1\nline-2\nline-3\n"
    assert not list(tmp_path.glob(".*tmp"))
