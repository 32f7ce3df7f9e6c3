"""What most users write: the official ``openai`` client, ``max_retries=5``, and a Semaphore.

The semaphore bounds concurrency, not rate: the client learns the limit only from 429s, which
it retries with its own backoff (honouring Retry-After when a server sends one).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence

from ._common import JobSpec, Report, RunSettings


class OpenAISemaphore:
    """``AsyncOpenAI(base_url=..., max_retries=5)`` behind ``asyncio.Semaphore(concurrency)``."""

    name = "openai+semaphore"
    modules = ("openai",)

    def missing(self) -> str | None:
        """Needs the ``openai`` package."""
        if importlib.util.find_spec("openai") is None:
            return "package 'openai' is not installed (pip install openai)"
        return None

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """One task per job, each awaiting the semaphore, then the client's own retries."""
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            max_retries=settings.max_attempts - 1,
            timeout=settings.call_timeout,
        )
        semaphore = asyncio.Semaphore(settings.concurrency)

        async def one(index: int, job: JobSpec) -> None:
            async with semaphore:
                try:
                    completion = await client.chat.completions.create(
                        model=settings.model,
                        messages=[{"role": "user", "content": job.prompt}],
                        max_tokens=job.max_tokens,
                    )
                    # A 200 without choices parses but is useless: count it as a failure.
                    if not completion.choices:
                        raise ValueError("no choices")
                    _ = completion.choices[0].message.content
                except Exception as exc:
                    report(index, type(exc).__name__)
                    return
            report(index, None)

        try:
            await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
        finally:
            await client.close()
