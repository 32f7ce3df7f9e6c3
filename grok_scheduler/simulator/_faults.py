"""Faults the simulator injects, and what each one looks like on the wire.

| kind            | what the client receives                                             |
|-----------------|----------------------------------------------------------------------|
| ``500``         | 500 ``{"code": "Internal error", "error": "Internal error"}``          |
| ``503``         | 503 model at capacity (transient)                                    |
| ``grammar``     | 503 ``Grammar is too complex.`` (permanent)                          |
| ``502_html``    | 502 with an HTML page from a proxy                                   |
| ``capacity_429``| 429 ``The service is temporarily at capacity...`` (transient)        |
| ``capacity_422``| 422 with the same message                                            |
| ``billing``     | 429 credits used up / spending limit reached (fatal, never retry)    |
| ``bad_key``     | 400 ``Incorrect API key provided: xa***b2 ...``                      |
| ``reset``       | the connection is aborted without any response                       |
| ``hang``        | nothing for ``hang_seconds`` (``stop()`` aborts it), then served      |
| ``malformed``   | 200 with truncated, invalid JSON                                     |
| ``no_choices``  | 200 JSON without ``choices`` (or ``output`` on /v1/responses)         |
| ``empty_body_500`` | 500 with an empty body                                            |

Faulted requests are decided before the rate limiter and consume no rate credit, except a
``hang``, which is served normally (and charged) if it outlives ``hang_seconds``.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from ._config import FAULT_KINDS
from ._protocol import EXHAUSTED, INTERNAL, INVALID_ARGUMENT, UNAVAILABLE, error_body, mask_key

CAPACITY_MESSAGE = "The service is temporarily at capacity. Please retry your request shortly."
BILLING_MESSAGE = (
    "Your team 00000000-0000-0000-0000-000000000000 has either used all available credits or "
    "reached its monthly spending limit. To continue making API requests, please purchase more "
    "credits or raise your spending limit."
)
MODEL_CAPACITY_MESSAGE = (
    "Service temporarily unavailable. The model is at capacity and currently cannot serve "
    "this request. Please try again later."
)
PROXY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class CannedResponse:
    """A fixed response: status, body bytes and content type."""

    status: int
    body: bytes
    content_type: str = JSON


def incorrect_key_message(presented: str) -> str:
    """xAI's message for a wrong key; the key is masked, never echoed."""
    return (
        f"Incorrect API key provided: {mask_key(presented)}. "
        "You can obtain an API key from https://console.x.ai."
    )


_CANNED: dict[str, CannedResponse] = {
    "500": CannedResponse(500, error_body(INTERNAL, "Internal error")),
    "503": CannedResponse(503, error_body(UNAVAILABLE, MODEL_CAPACITY_MESSAGE)),
    "grammar": CannedResponse(503, error_body(UNAVAILABLE, "Grammar is too complex.")),
    "502_html": CannedResponse(502, PROXY_HTML, "text/html"),
    "capacity_429": CannedResponse(429, error_body(EXHAUSTED, CAPACITY_MESSAGE)),
    "capacity_422": CannedResponse(422, error_body(EXHAUSTED, CAPACITY_MESSAGE)),
    "billing": CannedResponse(429, error_body(EXHAUSTED, BILLING_MESSAGE)),
    "malformed": CannedResponse(200, b'{"id": "chatcmpl-truncated", "object": "chat.compl'),
    "empty_body_500": CannedResponse(500, b"", "text/plain"),
}


def canned_fault(kind: str, presented_key: str) -> CannedResponse | None:
    """The fixed response of a fault, or ``None`` for faults the server acts out itself."""
    if kind == "bad_key":
        return CannedResponse(
            400, error_body(INVALID_ARGUMENT, incorrect_key_message(presented_key))
        )
    return _CANNED.get(kind)


class FaultInjector:
    """Decides which request fails how: forced faults first, then seeded random draws."""

    __slots__ = ("_forced", "_rng")

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._forced: deque[str] = deque()

    def __repr__(self) -> str:
        return f"FaultInjector(forced={list(self._forced)!r})"

    def fail_next(self, kind: str, n: int = 1) -> None:
        """Force the next ``n`` model calls to fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if n < 0:
            raise ValueError("n must be >= 0")
        self._forced.extend([kind] * n)

    def clear(self) -> None:
        """Forget forced faults not yet served."""
        self._forced.clear()

    def pick(self, probabilities: dict[str, float]) -> str | None:
        """The fault for this request, or ``None`` to serve it normally."""
        if self._forced:
            return self._forced.popleft()
        for kind, probability in probabilities.items():
            if probability > 0 and self._rng.random() < probability:
                return kind
        return None
