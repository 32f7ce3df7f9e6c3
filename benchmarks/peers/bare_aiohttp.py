"""The floor for overhead: a bare aiohttp loop with a semaphore, no limits and no retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ._common import JobSpec, Report, RunSettings, answer_text, chat_body


class BareAiohttp:
    """One POST per job under ``asyncio.Semaphore(concurrency)``; the body is parsed, no retry."""

    name = "bare aiohttp"
    modules = ("aiohttp",)

    def missing(self) -> str | None:
        """aiohttp is a runtime dependency of grok-scheduler, so always present."""
        return None

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """Send every job once."""
        import aiohttp

        url = settings.base_url.rstrip("/") + "/chat/completions"
        semaphore = asyncio.Semaphore(settings.concurrency)
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=aiohttp.ClientTimeout(total=settings.call_timeout),
            connector=aiohttp.TCPConnector(limit=settings.concurrency),
        ) as session:

            async def one(index: int, job: JobSpec) -> None:
                async with semaphore:
                    try:
                        async with session.post(url, json=chat_body(job, settings.model)) as r:
                            if r.status != 200:
                                raise RuntimeError(f"status {r.status}")
                            answer_text(await r.json(content_type=None))
                    except Exception as exc:
                        report(index, type(exc).__name__)
                        return
                report(index, None)

            await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
