"""SSE decoding and stream frames: deltas, error frames typed by code, completeness."""

from __future__ import annotations

import json

import pytest

from grok_scheduler import Endpoint
from grok_scheduler._wire._sse import SseDecoder
from grok_scheduler._wire._stream_frames import (
    Delta,
    ErrorFrame,
    StreamAssembler,
    status_for_code,
    stream_request,
)


def test_decoder_joins_events_split_across_chunks() -> None:
    """An event cut mid-line arrives whole once its blank line does; comments are skipped."""
    decoder = SseDecoder()
    assert decoder.feed(b': keep-alive\n\ndata: {"a"') == []
    assert decoder.feed(b": 1}\r\n\r\ndata: [DONE]\n\n") == ['{"a": 1}', "[DONE]"]


def test_decoder_flush_keeps_an_unterminated_event() -> None:
    """A last event without its blank line is still read when the body closes."""
    decoder = SseDecoder()
    decoder.feed(b"data: x")
    assert decoder.flush() == ["x"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("The service is currently unavailable", 503),
        ("Some resource has been exhausted", 429),
        ("Client specified an invalid argument", 400),
        ("Internal error", 500),
        (None, 500),
        (429, 429),
    ],
)
def test_status_for_code(code: object, status: int) -> None:
    """xAI's gRPC status texts map to the HTTP status the classifier knows."""
    assert status_for_code(code) == status


def test_flat_error_frame_mid_stream() -> None:
    """A flat ``{"code","error"}`` frame is an error, not an ordinary chunk."""
    assembler = StreamAssembler(Endpoint.CHAT_COMPLETIONS)
    assert assembler.read('{"choices":[{"delta":{"content":"a"}}]}') == Delta("a")
    found = assembler.read('{"code":"Some resource has been exhausted","error":"slow down"}')
    assert isinstance(found, ErrorFrame) and found.status == 429


def test_chat_complete_only_with_done_or_usage() -> None:
    """Deltas alone do not complete a stream; the final usage chunk or [DONE] does."""
    assembler = StreamAssembler(Endpoint.CHAT_COMPLETIONS)
    assembler.read('{"choices":[{"delta":{"content":"a","reasoning_content":"r"}}]}')
    assert not assembler.complete
    assembler.read('{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"total_tokens":3}}')
    assert assembler.complete
    body = assembler.body()
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "a",
        "reasoning_content": "r",
    }
    assert body["usage"] == {"total_tokens": 3}


def test_responses_failed_is_an_error_frame() -> None:
    """``response.failed`` carries its error's code as the status."""
    assembler = StreamAssembler(Endpoint.RESPONSES)
    found = assembler.read(
        '{"type":"response.failed","response":{"error":{"code":"server_error","message":"x"}}}'
    )
    assert isinstance(found, ErrorFrame) and found.status == 500


def test_stream_request_keeps_a_callers_stream_options() -> None:
    """Usage is asked for unless the caller said otherwise; responses get no stream_options."""
    chat = stream_request({"stream_options": {"include_usage": False}}, Endpoint.CHAT_COMPLETIONS)
    assert chat == {"stream": True, "stream_options": {"include_usage": False}}
    assert stream_request({}, Endpoint.RESPONSES) == {"stream": True}


def test_a_streamed_refusal_lands_in_the_message_as_in_a_plain_answer() -> None:
    """Refusal deltas are joined; a refusal streamed only as null stays null; none: no key."""

    def assembled(*deltas: dict[str, object]) -> dict[str, object]:
        assembler = StreamAssembler(Endpoint.CHAT_COMPLETIONS)
        for delta in deltas:
            assembler.read(json.dumps({"choices": [{"index": 0, "delta": delta}]}))
        message = assembler.body()["choices"][0]["message"]
        assert isinstance(message, dict)
        return message

    refused = assembled({"role": "assistant", "refusal": "I can"}, {"refusal": "not."})
    assert refused["refusal"] == "I cannot." and refused["content"] == ""
    assert assembled({"content": "Hi", "refusal": None})["refusal"] is None
    assert "refusal" not in assembled({"content": "Hi"})
