"""Intake: checked submit arguments become a queued job's state, or a refusal before queueing."""

from __future__ import annotations

import asyncio
from typing import Any

from .._guards._estimate import prompt_characters
from ._job import Job
from ._lanes import Lanes, lane_refusal
from ._settings import JobArguments, check_fits
from ._stream import StreamState

__all__ = ["make_job"]


def make_job(
    lanes: Lanes, args: JobArguments, metadata: Any, *, now: float, stream: StreamState | None
) -> Job:
    """A queued job's state, its tokens estimated; refused if it could never be sent."""
    characters, count = prompt_characters(args.messages)
    lane = lanes.get(args.model)
    if lane.unavailable is not None:
        raise lane_refusal(lane.unavailable)
    estimate = lane.estimator.estimate(characters, count, args.max_tokens)
    # The ceiling, not the current adaptive rate: a job that fits the limit must not be
    # refused because a 429 lowered the pace for a while.
    check_fits(estimate, lane.controller.tokens_ceiling)
    job = Job(
        prompt=args.messages,
        model=args.model,
        endpoint=args.endpoint,
        priority=args.priority,
        max_tokens=args.max_tokens,
        options=args.options,
        metadata=metadata,
        timeout=args.timeout,
        deadline=now + args.deadline if args.deadline is not None else None,
        estimated_tokens=estimate,
        characters=characters,
        key=lane.queue.key_for(args.priority, now),
        now=now,
        future=asyncio.get_running_loop().create_future(),
    )
    job.stream = stream
    return job
