"""Raw calls: a request body as an SDK built it, checked into a job's arguments.

:meth:`Scheduler.send_raw` is the entry point under SDKs: the httpx transport and the gateway
hand the scheduler the JSON body an SDK (openai-python, LangChain, any language) built. It is
sent as given; only what scheduling needs is read from it: the model (its lane), the answer cap
(the token estimate and the timeout) and the prompt (characters to estimate from). The server
judges everything else, so an SDK's own validation errors come back from the server exactly as
they would without the scheduler.

The answer is the final attempt's status, headers and body, a 4xx/5xx included, so the SDK's
own exception mapping still works. A job that ended with no answer at all (a connection
failure, its deadline, a closed scheduler) raises its typed error instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from .._errors import APIError, InvalidJobError
from .._models import Endpoint, Priority, Result
from .._transports._base import TransportResponse
from ._job import Job
from ._priority import current_priority
from ._settings import PRIORITY_LIMIT, JobArguments, SchedulerSettings, check_positive

__all__ = ["last_response", "raw_arguments", "refuse_stream", "sendable_as_is"]


def refuse_stream(body: Mapping[str, Any]) -> None:
    """``send_raw`` reads one JSON answer: a streamed request goes to ``send_raw_stream``.

    An event stream is not a body the outcome path can read: each 200 would be retried as
    unusable, sending (and billing) the same request ``max_attempts`` times.
    """
    if isinstance(body, Mapping) and body.get("stream"):
        raise InvalidJobError("a streamed raw request goes through send_raw_stream, not send_raw")

# The answer cap of each endpoint, in the order a server reads them.
_CAPS: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.CHAT_COMPLETIONS: ("max_completion_tokens", "max_tokens"),
    Endpoint.RESPONSES: ("max_output_tokens",),
}


def raw_arguments(
    settings: SchedulerSettings,
    path: str,
    body: Mapping[str, Any],
    *,
    priority: int | None,
    timeout: float | None,
    deadline: float | None,
) -> JobArguments:
    """The job arguments of a raw call to ``path`` (``chat/completions`` or ``responses``)."""
    try:
        endpoint = Endpoint(path.strip("/"))
    except ValueError:
        raise InvalidJobError(
            f"only chat/completions and responses are scheduled, not {path!r}"
        ) from None
    if not isinstance(body, Mapping):
        raise InvalidJobError("a raw request body is a JSON object")
    if priority is None:
        priority = current_priority()
    if priority is None:
        priority = Priority.NORMAL
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT
    ):
        raise InvalidJobError(f"priority must be an int or a Priority, got {priority!r}")
    for name, value in (("timeout", timeout), ("deadline", deadline)):
        try:
            check_positive(name, value)
        except ValueError as exc:
            raise InvalidJobError(str(exc)) from None
    model = body.get("model")
    prompt = body.get("input" if endpoint is Endpoint.RESPONSES else "messages")
    return JobArguments(
        # Only for the estimate: what is sent is the body itself.
        messages=_estimable(prompt),
        model=model if isinstance(model, str) and model else settings.model,
        endpoint=endpoint,
        priority=int(priority),
        max_tokens=_cap(body, endpoint) or settings.default_max_tokens,
        options={},
        timeout=timeout,
        deadline=deadline,
    )


def _estimable(prompt: object) -> str | list[dict[str, Any]]:
    """The prompt in the shape the estimator reads; anything odd counts as empty text."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return [item for item in prompt if isinstance(item, dict)]
    return ""


def _cap(body: Mapping[str, Any], endpoint: Endpoint) -> int | None:
    for name in _CAPS[endpoint]:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def sendable_as_is(encoded: bytes | None) -> bytes | None:
    """A client's own bytes when they can go upstream as they are; None to encode anew.

    ``json.loads`` reads a BOM and UTF-16/32 too; such bytes are no JSON for the server (RFC
    8259: UTF-8, no BOM), so their body is encoded anew, as it was before ``encoded``.
    """
    if encoded is not None and json.detect_encoding(encoded) == "utf-8":
        return encoded
    return None


async def last_response(job: Job, future: asyncio.Future[Result]) -> TransportResponse:
    """Wait for a raw job; the server's last answer to it, success or not."""
    try:
        await future
    except APIError:
        if job.last_response is None:
            raise
    # A result always comes from an answer, which the worker kept on the job.
    assert job.last_response is not None
    return job.last_response
