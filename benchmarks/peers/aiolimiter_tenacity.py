"""A careful hand-rolled client: aiohttp, aiolimiter at the configured rates, tenacity retries.

Each attempt (retries too) passes the limiter(s); 429, 5xx, connection errors, timeouts and
unusable 200 bodies are retried with jittered exponential backoff
(``wait_random_exponential(multiplier=0.5, max=8)``) up to the attempt budget.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from typing import Any

from ._common import JobSpec, Report, RunSettings, answer_text, chat_body, estimate_tokens


class RetryableError(Exception):
    """A status or body worth another attempt."""


class FatalError(Exception):
    """A status no retry will fix."""


class AiolimiterTenacity:
    """``AsyncLimiter(rps, 1)`` (+ ``AsyncLimiter(tpm, 60)`` for tokens) and ``@retry``."""

    name = "aiolimiter+tenacity"
    modules = ("aiohttp", "aiolimiter", "tenacity")

    def missing(self) -> str | None:
        """Needs ``aiolimiter`` and ``tenacity``."""
        for package in ("aiolimiter", "tenacity"):
            if importlib.util.find_spec(package) is None:
                return f"package {package!r} is not installed (pip install {package})"
        return None

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """A task per job under a semaphore; each attempt waits for the limiters first."""
        import aiohttp
        from aiolimiter import AsyncLimiter
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        rps, tpm = settings.requests_per_second, settings.tokens_per_minute
        requests = AsyncLimiter(rps, 1.0) if rps else None
        tokens = AsyncLimiter(tpm, 60.0) if tpm else None
        semaphore = asyncio.Semaphore(settings.concurrency)
        url = settings.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {settings.api_key}"}
        timeout = aiohttp.ClientTimeout(total=settings.call_timeout)
        retryable = (RetryableError, aiohttp.ClientError, asyncio.TimeoutError)

        async with aiohttp.ClientSession(
            headers=headers,
            timeout=timeout,
            connector=aiohttp.TCPConnector(limit=settings.concurrency),
        ) as session:

            async def attempt(job: JobSpec) -> None:
                if requests is not None:
                    await requests.acquire()
                if tokens is not None and tpm is not None:
                    await tokens.acquire(min(float(estimate_tokens(job)), tpm))
                body: dict[str, Any] = chat_body(job, settings.model)
                async with session.post(url, json=body) as response:
                    if response.status == 429 or response.status >= 500:
                        raise RetryableError(f"status {response.status}")
                    if response.status >= 400:
                        raise FatalError(f"status {response.status}")
                    try:
                        answer_text(await response.json(content_type=None))
                    except ValueError as exc:
                        raise RetryableError(str(exc)) from exc

            async def one(index: int, job: JobSpec) -> None:
                async with semaphore:
                    try:
                        async for state in AsyncRetrying(
                            stop=stop_after_attempt(settings.max_attempts),
                            wait=wait_random_exponential(multiplier=0.5, max=8.0),
                            retry=retry_if_exception_type(retryable),
                            reraise=True,
                        ):
                            with state:
                                await attempt(job)
                    except Exception as exc:
                        report(index, type(exc).__name__)
                        return
                report(index, None)

            await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
