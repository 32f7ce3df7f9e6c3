"""What earlier runs finished: preparing an existing output for a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

from grok_scheduler import Result, Usage
from grok_scheduler.cli._lines import LineRef
from grok_scheduler.cli._output import success_line
from grok_scheduler.cli._resume import prepare_output


def _success(custom_id: str) -> bytes:
    return json.dumps({"id": "x", "custom_id": custom_id, "response": {}, "error": None}).encode()


def _failure(custom_id: str) -> bytes:
    return json.dumps({"id": "x", "custom_id": custom_id, "response": None, "error": {}}).encode()


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


def test_a_success_with_a_bom_body_is_kept_on_resume(tmp_path: Path) -> None:
    """A success whose body began with a BOM is a success on resume (not sent again)."""
    raw = b'\xef\xbb\xbf{"choices":[]}'
    result = Result(
        text="",
        usage=Usage(),
        model="m",
        request_id="r",
        attempts=1,
        queued_seconds=0.0,
        in_flight_seconds=0.0,
        finish_reason="stop",
        body={"choices": []},
        raw_body=raw,
    )
    path = tmp_path / "out.jsonl"
    path.write_bytes(success_line(LineRef("a", 1), result))
    state = prepare_output(path)
    assert state.kept == 1 and "a" in state.done and state.dropped == 0


def test_resume_tells_an_answered_request_from_a_changed_one(tmp_path: Path) -> None:
    """An id answered for request X is done for X, changed for Y; old lines (no hash) are done."""
    path = tmp_path / "out.jsonl"
    hashed = json.loads(_success("a"))
    hashed["request_hash"] = "x-hash"
    path.write_bytes(json.dumps(hashed).encode() + b"\n" + _success("old") + b"\n")
    state = prepare_output(path)
    assert state.status("a", "x-hash") == "done"
    assert state.status("a", "y-hash") == "changed"
    assert state.status("old", "anything") == "done"  # written before request_hash existed
    assert state.status("new", "z") == "todo"
