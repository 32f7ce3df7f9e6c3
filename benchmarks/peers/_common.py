"""What every peer receives and reports: the job list, the run settings and a report callback.

A peer runs a list of :class:`JobSpec` against an OpenAI-compatible base URL and calls
``report(index, error)`` exactly once per job when it ends (``error`` is ``None`` on success, else
the error's type name). The harness counts everything else (makespan, hung, double reports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Report = Callable[[int, str | None], None]
"""``report(job_index, error_type_name_or_None)``: called once when a job ends."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One prompt to send."""

    prompt: str
    max_tokens: int


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What the user told the client: where, with which key, and the limits they believe in."""

    base_url: str
    api_key: str = "xai-benchmark-key-0000000000000000"
    model: str = "grok-4-fast"
    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    concurrency: int = 32
    call_timeout: float = 10.0
    max_attempts: int = 6


class Peer(Protocol):
    """A client under test."""

    @property
    def name(self) -> str:
        """How tables name this peer."""
        ...

    @property
    def modules(self) -> tuple[str, ...]:
        """Modules the run imports (the harness imports them before it starts the CPU clock)."""
        ...

    def missing(self) -> str | None:
        """Why this peer cannot run here (a package is not installed), or None."""
        ...

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """Run every job, calling ``report`` once per job as it ends."""
        ...


def chat_body(job: JobSpec, model: str) -> dict[str, Any]:
    """The chat/completions JSON body of a job."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": job.prompt}],
        "max_tokens": job.max_tokens,
    }


def estimate_tokens(job: JobSpec) -> int:
    """A client-side token estimate (4 characters a token, plus the answer's ceiling)."""
    return len(job.prompt) // 4 + 8 + job.max_tokens


def answer_text(body: object) -> str:
    """The first choice's text; ValueError when the body has none (a 200 can still be bad)."""
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("no text")
    return content
