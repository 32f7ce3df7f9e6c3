"""How a job's ending is expressed: the answer read, the Result built, the refusal written."""

from __future__ import annotations

import json
from typing import Any

from .._errors import APIError
from .._models import Endpoint, Result, Usage
from .._transports._base import TransportResponse
from .._wire._response import extract_answer
from ._job import Job

__all__ = ["RAW_ANSWERED", "make_result", "not_sent_copy", "read_answer"]

# What a raw call's future resolves with: its caller (send_raw, the gateway, the httpx
# transport) hands on the server's answer itself (``job.last_response``), so no Result is built
# for it; building one was about 7% of the scheduler's instructions per gateway request.
RAW_ANSWERED = Result(
    text="",
    usage=Usage(),
    model=None,
    request_id=None,
    attempts=0,
    queued_seconds=0.0,
    in_flight_seconds=0.0,
    finish_reason=None,
    body={},
)


def read_answer(body: bytes, endpoint: Endpoint) -> tuple[dict[str, Any], str, str | None]:
    """The parsed body, its text and finish reason; ``ValueError`` when the body is unusable."""
    parsed = json.loads(body)
    if not isinstance(parsed, dict):
        raise ValueError("the body is not a JSON object")
    text, finish_reason = extract_answer(parsed, endpoint)
    return parsed, text, finish_reason


def make_result(
    job: Job,
    response: TransportResponse,
    parsed: dict[str, Any],
    usage: Usage,
    text: str,
    finish_reason: str | None,
) -> Result:
    """The :class:`Result` a successful job resolves with."""
    model = parsed.get("model")
    request_id = parsed.get("id")
    return Result(
        text=text,
        usage=usage,
        model=model if isinstance(model, str) else job.model,
        request_id=response.request_id or (request_id if isinstance(request_id, str) else None),
        attempts=job.attempts,
        queued_seconds=job.queued_seconds,
        in_flight_seconds=job.in_flight_seconds,
        finish_reason=finish_reason,
        body=parsed,
        raw_body=response.body,
        metadata=job.metadata,
        status_code=response.status,
    )


def not_sent_copy(fatal: APIError, job: Job | None) -> APIError:
    """A fresh error for a job refused because the run was stopped (``job`` None: a submit).

    The fatal error's type (``except`` clauses still work) and, as its ``__cause__``, the fatal
    error itself; not its status or request id, which belong to the call that got it.
    """
    # A job sent before (then requeued, or still on the wire at the stop) is not retried.
    verb = "not retried" if job is not None and job.attempts > 0 else "not sent"
    copy = type(fatal)(
        f"{verb}: the run stopped after {type(fatal).__name__}: {fatal.message}",
        status_code=None,
    )
    if "fails_every_job" in vars(fatal):
        copy.fails_every_job = fatal.fails_every_job
    copy.__cause__ = fatal
    return copy
