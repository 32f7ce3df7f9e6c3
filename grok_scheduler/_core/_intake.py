"""Intake: checked submit arguments become a queued job, or a refusal before queueing."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from .._clock import Clock
from .._guards._budget import Budget
from .._guards._estimate import prompt_characters
from .._models import Priority, Result
from .._observe._events import events as _log
from .._observe._stats import StatsRecorder
from ._gate import GateState
from ._job import Job
from ._lanes import Lanes, lane_refusal
from ._outcome import OutcomeHandler
from ._settings import JobArguments, check_fits
from ._stream import StreamState

__all__ = ["enqueue", "make_job"]


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


def enqueue(
    job: Job,
    *,
    lanes: Lanes,
    state: GateState,
    budget: Budget | None,
    stats: StatsRecorder,
    outcome: OutcomeHandler,
    clock: Clock,
    wake: Callable[[], None],
    log_jobs: bool,
) -> asyncio.Future[Result]:
    """Queue a checked job: budget, statistics, the gate's wake-up and its deadline."""
    if job.priority <= Priority.HIGH:
        state.last_urgent_at = job.submitted_at
    if budget is not None:
        # Raises BudgetExceededError before anything is queued or sent.
        budget.reserve(job.estimated_tokens)
        job.budget_held = True
    stats.submitted(job.priority)
    if log_jobs:
        _log.debug(
            "grok_scheduler.submitted",
            priority=job.priority,
            model=job.model,
            estimated_tokens=job.estimated_tokens,
            queued=lanes.queued() + 1,
        )
    # Wake the gate for a new head, or for an urgent job while it holds the reserved slots.
    if lanes.get(job.model).queue.push(job, job.submitted_at) or (
        state.waiting_for_slot and job.priority <= Priority.HIGH
    ):
        wake()
    job.future.add_done_callback(functools.partial(outcome.future_done, job))
    if job.deadline is not None:
        job.deadline_timer = clock.call_at(job.deadline, functools.partial(outcome.expire, job))
    return job.future
