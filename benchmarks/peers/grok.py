"""grok-scheduler through its public API: submit everything, report as futures resolve."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from ._common import JobSpec, Report, RunSettings


class GrokScheduler:
    """The library under test, configured with the same limits and attempt budget as the rest."""

    name = "grok-scheduler"
    modules = ("grok_scheduler",)

    def missing(self) -> str | None:
        """Always available: it is this repository."""
        return None

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """Queue every job with ``submit_nowait`` and wait for the scheduler to drain."""
        from grok_scheduler import RetryPolicy, Scheduler

        async with Scheduler(
            api_key=settings.api_key,
            base_url=settings.base_url,
            model=settings.model,
            requests_per_second=settings.requests_per_second,
            tokens_per_minute=settings.tokens_per_minute,
            max_concurrency=settings.concurrency,
            timeout=settings.call_timeout,
            retry=RetryPolicy(max_attempts=settings.max_attempts),
        ) as scheduler:
            futures = []
            for index, job in enumerate(jobs):
                # Per job as well as per scheduler: the result does not depend on which one
                # the core reads first.
                future = scheduler.submit_nowait(
                    job.prompt, max_tokens=job.max_tokens, timeout=settings.call_timeout
                )
                future.add_done_callback(functools.partial(_report, report, index))
                futures.append(future)
            await asyncio.gather(*futures, return_exceptions=True)


def _report(report: Report, index: int, future: asyncio.Future[object]) -> None:
    if future.cancelled():
        report(index, "CancelledError")
        return
    error = future.exception()
    report(index, None if error is None else type(error).__name__)
