"""Batch files: line parsing, result lines, the compact id set, durable appends and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok_scheduler import AuthenticationError, Endpoint, Result, Usage
from grok_scheduler._core._map import Rejected
from grok_scheduler.cli._batchio import (
    IdSet,
    InvalidLineError,
    LineParser,
    LineRef,
    OutputWriter,
    count_lines,
    failure_line,
    prepare_output,
    success_line,
)


def parse(line: object, number: int = 1, **kwargs: Any) -> Any:
    raw = line if isinstance(line, bytes) else json.dumps(line).encode()
    return LineParser(**kwargs).parse(raw, number)


# -- parsing ---------------------------------------------------------------------------------
def test_batch_chat_line_maps_body_fields_onto_submit() -> None:
    """A chat batch line: messages, model, max tokens and temperature become submit options."""
    messages = [{"role": "user", "content": "Hi"}]
    prompt, options = parse(
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "grok-3-mini",
                "messages": messages,
                "max_completion_tokens": 50,
                "temperature": 0.5,
                "reasoning_effort": "low",
            },
        },
        7,
    )
    assert prompt == messages
    assert options["model"] == "grok-3-mini"
    assert options["max_tokens"] == 50
    assert options["temperature"] == 0.5
    assert options["endpoint"] is Endpoint.CHAT_COMPLETIONS
    assert options["extra_body"] == {"reasoning_effort": "low"}
    assert options["metadata"] == LineRef("a", 7)


def test_batch_responses_line_uses_input_and_max_output_tokens() -> None:
    """A responses batch line: input is the prompt, max_output_tokens the cap, rest extra."""
    prompt, options = parse(
        {
            "custom_id": "r",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"input": "Hello", "max_output_tokens": 99, "instructions": "Be brief"},
        }
    )
    assert prompt == "Hello"
    assert options["endpoint"] is Endpoint.RESPONSES
    assert options["max_tokens"] == 99
    assert options["extra_body"] == {"instructions": "Be brief"}
    assert "model" not in options  # the run's --model applies


def test_plain_line_with_prompt_and_options() -> None:
    """The plain shape: id, prompt and the optional fields; metadata is echoed via LineRef."""
    prompt, options = parse(
        {
            "id": 12,
            "prompt": "Hi",
            "max_tokens": 10,
            "temperature": 0,
            "priority": "high",
            "model": "m",
            "metadata": {"k": 1},
        },
        3,
    )
    assert prompt == "Hi"
    assert options == {
        "metadata": LineRef("12", 3, {"k": 1}),
        "model": "m",
        "max_tokens": 10,
        "temperature": 0,
        "priority": 1,
    }


def test_line_without_id_gets_its_line_number() -> None:
    """A line with no id is named line-<n>."""
    _, options = parse({"messages": [{"role": "user", "content": "x"}]}, 42)
    assert options["metadata"].custom_id == "line-42"


def test_priority_field_is_configurable_and_kept_out_of_the_body() -> None:
    """--priority-field reads another field; a body copy of it is not sent to the API."""
    _, options = parse(
        {
            "custom_id": "a",
            "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": "x"}], "urgency": 0},
        },
        priority_field="urgency",
    )
    assert options["priority"] == 0
    assert "extra_body" not in options


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_line"),
        ({"custom_id": "a", "url": "/v1/embeddings", "body": {}}, "unknown_url"),
        ({"custom_id": "a", "method": "POST", "body": {}}, "missing_field"),
        ({"custom_id": "a", "url": "/v1/chat/completions"}, "missing_field"),
        (
            {"custom_id": "a", "url": "/v1/chat/completions", "body": {"model": "m"}},
            "missing_field",
        ),
        ({"custom_id": "a", "url": "/v1/responses", "body": {"model": "m"}}, "missing_field"),
        ({"custom_id": "a", "method": "GET", "url": "/v1/responses", "body": {}}, "invalid_field"),
        (
            {
                "custom_id": "a",
                "url": "/v1/chat/completions",
                "body": {"messages": [], "stream": 1},
            },
            "invalid_field",
        ),
        ({"id": "a"}, "missing_field"),
        ({"id": "a", "prompt": "x", "priority": "soon"}, "invalid_field"),
        ({"id": "a", "prompt": "x", "priority": True}, "invalid_field"),
        ({"id": ["a"], "prompt": "x"}, "invalid_field"),
        ({"id": "a", "prompt": "x", "model": 5}, "invalid_field"),
    ],
)
def test_bad_lines_are_rejected_with_their_line_number(line: object, code: str) -> None:
    """A line that cannot become a job is a Rejected error naming its line, never an exception."""
    rejected = parse(line, 9)
    assert isinstance(rejected, Rejected)
    assert isinstance(rejected.error, InvalidLineError)
    assert rejected.error.code == code
    assert "9" in str(rejected.error)
    assert rejected.metadata.line == 9


# -- id set ----------------------------------------------------------------------------------
def test_id_set_adds_once_and_grows() -> None:
    """add() is True only the first time; membership survives growth past the first table."""
    ids = IdSet()
    assert all(ids.add(f"id-{n}") for n in range(5000))
    assert not ids.add("id-17")
    assert len(ids) == 5000
    assert "id-4999" in ids and "id-5000" not in ids and 3 not in ids


@given(st.lists(st.text(max_size=12), max_size=300))
def test_id_set_behaves_like_a_set(items: list[str]) -> None:
    """For any strings, IdSet agrees with a Python set on add and membership."""
    ids, reference = IdSet(), set()
    for item in items:
        assert ids.add(item) == (item not in reference)
        reference.add(item)
    assert len(ids) == len(reference)
    assert all(item in ids for item in reference)


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


# -- writing and resuming --------------------------------------------------------------------
def _success(custom_id: str) -> bytes:
    return json.dumps({"id": "x", "custom_id": custom_id, "response": {}, "error": None}).encode()


def _failure(custom_id: str) -> bytes:
    return json.dumps({"id": "x", "custom_id": custom_id, "response": None, "error": {}}).encode()


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


def test_prepare_output_on_a_new_file_starts_empty(tmp_path: Path) -> None:
    """No output yet: nothing is done and the file exists, empty."""
    path = tmp_path / "out.jsonl"
    state = prepare_output(path)
    assert path.read_bytes() == b""
    assert not state.resumed and len(state.done) == 0


def test_resume_keeps_successes_and_drops_failures_and_duplicates(tmp_path: Path) -> None:
    """Successes stay (first one per id); failures, junk and repeats go, so they are redone."""
    path = tmp_path / "out.jsonl"
    lines = [_success("a"), _failure("b"), b"junk", _success("c"), _success("a"), b""]
    path.write_bytes(b"\n".join(lines) + b"\n")
    state = prepare_output(path)
    assert state.resumed and state.kept == 2 and state.dropped == 3 and not state.torn
    assert "a" in state.done and "c" in state.done and "b" not in state.done
    assert path.read_bytes() == _success("a") + b"\n" + _success("c") + b"\n\n"
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


def test_resume_cuts_a_torn_last_line(tmp_path: Path) -> None:
    """A last line without its newline (a write cut short) is removed, even if it parses."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(_success("a") + b"\n" + _success("b"))
    state = prepare_output(path)
    assert state.torn and state.kept == 1 and "b" not in state.done
    assert path.read_bytes() == _success("a") + b"\n"


def test_overwrite_empties_the_output(tmp_path: Path) -> None:
    """--overwrite starts over whatever the file holds."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(_success("a") + b"\n")
    state = prepare_output(path, overwrite=True)
    assert path.read_bytes() == b"" and len(state.done) == 0


def test_count_lines_counts_an_unterminated_last_line(tmp_path: Path) -> None:
    """Counting is by newlines, plus one for a last line without a newline."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"a\nb\nc")
    assert count_lines(path) == 3
    path.write_bytes(b"a\nb\n")
    assert count_lines(path) == 2
    path.write_bytes(b"")
    assert count_lines(path) == 0
