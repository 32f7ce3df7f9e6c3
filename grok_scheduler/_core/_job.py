"""A job's internal state as it moves through queue, limiter and transport."""

from __future__ import annotations

import asyncio
from typing import Any

from .._clock import TimerHandle
from .._errors import AttemptRecord
from .._limits._acceptance import SendRecord
from .._models import Endpoint, Result
from .._transports._base import TransportResponse
from .._wire._request import request_body
from .._wire._stream_frames import stream_request
from ._stream import StreamState

__all__ = ["Job"]


class Job:
    """One submitted prompt. Mutable, owned by the scheduler; users only see its future."""

    __slots__ = (
        "attempts",
        "budget_held",
        "cancelled",
        "characters",
        "deadline",
        "deadline_timer",
        "eligible_at",
        "endpoint",
        "enqueued_at",
        "estimated_tokens",
        "future",
        "history",
        "in_flight_seconds",
        "key",
        "last_response",
        "max_tokens",
        "metadata",
        "model",
        "options",
        "priority",
        "prompt",
        "queue_order",
        "queued",
        "queued_seconds",
        "raw_body",
        "raw_bytes",
        "send_record",
        "stream",
        "submitted_at",
        "timeout",
    )

    def __init__(
        self,
        *,
        prompt: str | list[dict[str, Any]],
        model: str,
        endpoint: Endpoint,
        priority: int,
        max_tokens: int | None,
        options: dict[str, Any],
        metadata: Any,
        timeout: float | None,
        deadline: float | None,
        estimated_tokens: int,
        characters: int,
        key: float,
        now: float,
        future: asyncio.Future[Result],
    ) -> None:
        self.prompt = prompt
        self.model = model
        self.endpoint = endpoint
        self.priority = priority
        self.max_tokens = max_tokens
        self.options = options
        self.metadata = metadata
        self.timeout = timeout
        self.deadline = deadline
        self.estimated_tokens = estimated_tokens
        self.characters = characters  # of prompt text, for learning the token ratio
        self.key = key
        self.submitted_at = now
        self.enqueued_at = now
        self.eligible_at = now
        self.future = future
        self.attempts = 0
        self.history: list[AttemptRecord] = []
        self.queued_seconds = 0.0
        self.in_flight_seconds = 0.0
        # The slot of send time of the current attempt, to book its fate on when it returns.
        self.send_record: SendRecord | None = None
        self.cancelled = False
        self.queued = False
        # The queue's tie-break among equal keys, set at the first push and kept by retries.
        self.queue_order: int | None = None
        self.budget_held = False
        self.deadline_timer: TimerHandle | None = None
        # Set for a job of Scheduler.stream: the channel its chunks travel to the caller on.
        self.stream: StreamState | None = None
        # A raw call (send_raw) is sent as its SDK built it, and answered with the server's
        # last response, so both are kept; a submitted job has neither.
        self.raw_body: dict[str, Any] | None = None
        # The raw body's bytes as its client encoded them, when given: sent as they are, not
        # encoded again on every attempt (the gateway's CPU per request, issue 15).
        self.raw_bytes: bytes | None = None
        self.last_response: TransportResponse | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body for this job's endpoint (built at send time to keep queued jobs small)."""
        if self.raw_body is not None:
            return self.raw_body
        body = request_body(
            endpoint=self.endpoint,
            model=self.model,
            prompt=self.prompt,
            max_tokens=self.max_tokens,
            options=self.options,
        )
        return body if self.stream is None else stream_request(body, self.endpoint)

    def __repr__(self) -> str:
        return (
            f"Job(priority={self.priority}, endpoint={self.endpoint.value}, "
            f"attempts={self.attempts}, estimated_tokens={self.estimated_tokens})"
        )
