"""Input lines -> jobs: line parsing, the compact id set and line counting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok_scheduler import Endpoint
from grok_scheduler._core._map import Rejected
from grok_scheduler.cli._lines import IdSet, InvalidLineError, LineParser, LineRef, count_lines


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
        "metadata": LineRef("12", 3, {"k": 1}, echo_id=True),
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


# -- counting --------------------------------------------------------------------------------------
def test_count_lines_counts_an_unterminated_last_line(tmp_path: Path) -> None:
    """Counting is by newlines, plus one for a last line without a newline."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"a\nb\nc")
    assert count_lines(path) == 3
    path.write_bytes(b"a\nb\n")
    assert count_lines(path) == 2
    path.write_bytes(b"")
    assert count_lines(path) == 0
