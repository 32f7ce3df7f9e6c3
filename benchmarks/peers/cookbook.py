"""The OpenAI cookbook's parallel request processor, written again from its description.

Algorithm (as the cookbook describes it): request and token capacity start at one full minute's
worth and refill continuously, capped at a minute's worth; a single loop polls every millisecond,
takes the next job (retries first), and sends it as soon as both capacities cover it, with no
bound on concurrency; any error puts the job straight back on the retry queue until its attempts
run out; a rate-limit error pauses the whole loop for 15 s.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._common import JobSpec, Report, RunSettings, answer_text, chat_body, estimate_tokens

PAUSE_AFTER_RATE_LIMIT = 15.0
POLL_SECONDS = 0.001


@dataclass(slots=True)
class _Pending:
    index: int
    job: JobSpec
    tokens: int
    attempts_left: int


class Cookbook:
    """The cookbook's loop over aiohttp, at the configured per-minute limits."""

    name = "cookbook"
    modules = ("aiohttp",)

    def missing(self) -> str | None:
        """Needs only aiohttp (a runtime dependency of grok-scheduler)."""
        if importlib.util.find_spec("aiohttp") is None:
            return "package 'aiohttp' is not installed"
        return None

    async def run(self, jobs: Sequence[JobSpec], settings: RunSettings, report: Report) -> None:
        """Poll, dispatch within capacity, retry at once, pause 15 s after a 429."""
        import aiohttp

        rpm = settings.requests_per_second * 60.0 if settings.requests_per_second else math.inf
        tpm = settings.tokens_per_minute or math.inf
        request_capacity, token_capacity = rpm, tpm
        last_update = time.monotonic()
        last_rate_limit = -math.inf
        retries: deque[_Pending] = deque()
        upcoming = iter(range(len(jobs)))
        input_done = False
        in_progress = 0
        tasks: set[asyncio.Task[None]] = set()
        url = settings.base_url.rstrip("/") + "/chat/completions"

        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=aiohttp.ClientTimeout(total=settings.call_timeout),
            connector=aiohttp.TCPConnector(limit=0),
        ) as session:

            async def call(pending: _Pending) -> None:
                nonlocal in_progress, last_rate_limit
                error: str | None = None
                try:
                    body: dict[str, Any] = chat_body(pending.job, settings.model)
                    async with session.post(url, json=body) as response:
                        if response.status == 429:
                            last_rate_limit = time.monotonic()
                        if response.status >= 400:
                            error = f"HTTP{response.status}"
                        else:
                            answer_text(await response.json(content_type=None))
                except Exception as exc:
                    error = type(exc).__name__
                in_progress -= 1
                if error is None:
                    report(pending.index, None)
                elif pending.attempts_left > 0:
                    retries.append(pending)
                else:
                    report(pending.index, error)

            following: _Pending | None = None
            while True:
                if following is None:
                    if retries:
                        following = retries.popleft()
                    else:
                        index = next(upcoming, None)
                        input_done = index is None
                        if index is not None:
                            job = jobs[index]
                            following = _Pending(
                                index, job, estimate_tokens(job), settings.max_attempts
                            )
                now = time.monotonic()
                elapsed, last_update = now - last_update, now
                request_capacity = min(rpm, request_capacity + rpm * elapsed / 60.0)
                token_capacity = min(tpm, token_capacity + tpm * elapsed / 60.0)
                if following is not None and (
                    request_capacity >= 1 and token_capacity >= following.tokens
                ):
                    request_capacity -= 1
                    token_capacity -= following.tokens
                    following.attempts_left -= 1
                    in_progress += 1
                    task = asyncio.create_task(call(following))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    following = None
                if following is None and input_done and in_progress == 0 and not retries:
                    break
                await asyncio.sleep(POLL_SECONDS)
                since = time.monotonic() - last_rate_limit
                if since < PAUSE_AFTER_RATE_LIMIT:
                    await asyncio.sleep(PAUSE_AFTER_RATE_LIMIT - since)
