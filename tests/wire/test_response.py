"""Reading responses: the request id (one reader for every caller) and the answer text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from grok_scheduler import TransportResponse
from grok_scheduler._models import Endpoint
from grok_scheduler._wire._classify import classify_response
from grok_scheduler._wire._response import extract_answer, read_request_id

# headers, expected request id
REQUEST_IDS: list[tuple[Mapping[str, str], str | None]] = [
    ({}, None),
    ({"content-type": "application/json"}, None),
    ({"x-request-id": "a"}, "a"),
    ({"request-id": "b"}, "b"),
    ({"x-xai-request-id": "c"}, "c"),
    # Any spelling of the name, in a plain dict too.
    ({"X-Request-Id": "a"}, "a"),
    ({"Request-ID": "b"}, "b"),
    ({"X-XAI-Request-Id": "c"}, "c"),
    # The first name of the list wins, whatever the order the server sent them in.
    ({"x-xai-request-id": "c", "request-id": "b", "x-request-id": "a"}, "a"),
    ({"X-Xai-Request-Id": "c", "Request-Id": "b"}, "b"),
    # An empty value says nothing: the next name is used.
    ({"x-request-id": "", "request-id": "b"}, "b"),
    ({"X-Request-Id": "", "x-xai-request-id": "c"}, "c"),
    # Never a key in an error or a result file; never unbounded.
    ({"x-request-id": "xai-0123456789abcdefXYZ"}, "xai-***"),
    ({"x-request-id": "r" * 500}, "r" * 200),
    (CIMultiDictProxy(CIMultiDict({"X-Request-ID": "m"})), "m"),
]


@pytest.mark.parametrize(("headers", "expected"), REQUEST_IDS)
def test_read_request_id(headers: Mapping[str, str], expected: str | None) -> None:
    """x-request-id, request-id, x-xai-request-id in that order, any case, redacted, bounded."""
    assert read_request_id(headers) == expected


@pytest.mark.parametrize(("headers", "expected"), REQUEST_IDS)
def test_every_reader_agrees(headers: Mapping[str, str], expected: str | None) -> None:
    """A response and its error report the same request id."""
    response = TransportResponse(status=500, body=b"", headers=headers)
    assert response.request_id == expected
    assert classify_response(500, headers, b"").error.request_id == expected


def test_read_request_id_survives_a_broken_mapping() -> None:
    """Headers that raise when read give no request id, not a crash."""

    class Broken(Mapping[str, str]):
        def __getitem__(self, key: str) -> str:
            raise RuntimeError("no")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("no")

        def __len__(self) -> int:
            return 1

    assert read_request_id(Broken()) is None


# body, endpoint, expected (text, finish reason)
ANSWERS: list[tuple[dict[str, Any], Endpoint, tuple[str, str | None]]] = [
    (
        {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]},
        Endpoint.CHAT_COMPLETIONS,
        ("hi", "stop"),
    ),
    ({"choices": [{"message": {"content": None}}]}, Endpoint.CHAT_COMPLETIONS, ("", None)),
    ({"choices": [{"text": "legacy"}]}, Endpoint.CHAT_COMPLETIONS, ("legacy", None)),
    (
        {
            "status": "completed",
            "output": [
                {"type": "reasoning", "summary": []},
                {
                    "type": "message",
                    "content": [
                        {"type": "output_text", "text": "a"},
                        {"type": "refusal", "refusal": "no"},
                        {"type": "output_text", "text": "b"},
                    ],
                },
            ],
        },
        Endpoint.RESPONSES,
        ("ab", "completed"),
    ),
    ({"output": []}, Endpoint.RESPONSES, ("", None)),
]


@pytest.mark.parametrize(("body", "endpoint", "expected"), ANSWERS)
def test_extract_answer(
    body: dict[str, Any], endpoint: Endpoint, expected: tuple[str, str | None]
) -> None:
    """The text and finish reason of a 2xx body, for either endpoint."""
    assert extract_answer(body, endpoint) == expected


@pytest.mark.parametrize(
    ("body", "endpoint"),
    [
        ({}, Endpoint.CHAT_COMPLETIONS),
        ({"choices": []}, Endpoint.CHAT_COMPLETIONS),
        ({"choices": [{"message": {"content": 3}}]}, Endpoint.CHAT_COMPLETIONS),
        ({}, Endpoint.RESPONSES),
        ({"output": "text"}, Endpoint.RESPONSES),
    ],
)
def test_extract_answer_rejects_bodies_without_one(
    body: dict[str, Any], endpoint: Endpoint
) -> None:
    """A body with no answer in it is a ValueError (the scheduler's validation error)."""
    with pytest.raises(ValueError):
        extract_answer(body, endpoint)
