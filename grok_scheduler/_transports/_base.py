"""The transport interface: one ``send`` that returns a raw HTTP answer.

A transport returns whatever status the server gave. For connection-level trouble it raises a
typed :class:`~grok_scheduler.APIConnectionError` / :class:`~grok_scheduler.APITimeoutError`
(the aiohttp transport) or a plain :class:`TimeoutError` / :class:`OSError` (simple transports);
:mod:`grok_scheduler._wire._classify` turns either into a retry verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .._wire._response import read_request_id

__all__ = ["Transport", "TransportResponse"]


@dataclass(frozen=True, slots=True)
class TransportResponse:
    """A raw HTTP answer."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str | None:
        """The server's request id header, when it sent one."""
        return read_request_id(self.headers)


class Transport(Protocol):
    """Sends a JSON body to an endpoint path (relative to the base URL)."""

    async def send(self, path: str, body: bytes, *, timeout: float) -> TransportResponse:
        """POST ``body``; raise :class:`TimeoutError` after ``timeout`` seconds."""
        ...

    async def aclose(self) -> None: ...
