"""``Scheduler.map``: stream any iterable of prompts through the scheduler with bounded look-ahead.

Only ``window`` jobs are in the scheduler at a time, so an endless or million-line input costs
the memory of ``window`` futures, not of the whole input. Outcomes come back as they finish, or
in input order with ``ordered=True`` (then a slow job holds back later ones, still bounded).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import InvalidJobError, SchedulerError
from ._models import Result

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["Outcome", "PromptItem", "map_prompts"]

PromptItem: TypeAlias = str | Sequence[Mapping[str, Any]] | Mapping[str, Any]

_SUBMIT_OPTIONS = frozenset(
    {
        "priority",
        "model",
        "max_tokens",
        "temperature",
        "endpoint",
        "timeout",
        "deadline",
        "metadata",
        "extra_body",
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One input's fate: its position, and either a result or the typed error it ended with."""

    index: int
    result: Result | None
    error: SchedulerError | None
    metadata: Any = None

    @property
    def ok(self) -> bool:
        """True when the job succeeded."""
        return self.result is not None


def _split_item(item: PromptItem, defaults: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    options = dict(defaults)
    if isinstance(item, Mapping):
        prompt = item.get("prompt", item.get("messages"))
        unknown = set(item) - _SUBMIT_OPTIONS - {"prompt", "messages"}
        if unknown:
            raise InvalidJobError(f"unknown fields in a map item: {sorted(unknown)}")
        options.update({k: v for k, v in item.items() if k in _SUBMIT_OPTIONS})
        return prompt, options
    return item, options


async def _aiter(
    prompts: Iterable[PromptItem] | AsyncIterable[PromptItem],
) -> AsyncIterator[PromptItem]:
    if isinstance(prompts, AsyncIterable):
        async for item in prompts:
            yield item
    else:
        for item in prompts:
            yield item


async def map_prompts(
    scheduler: Scheduler,
    prompts: Iterable[PromptItem] | AsyncIterable[PromptItem],
    *,
    ordered: bool = False,
    window: int | None = None,
    **defaults: Any,
) -> AsyncIterator[Outcome]:
    """Submit ``prompts`` with at most ``window`` outstanding; yield an :class:`Outcome` each."""
    limit = window if window is not None else max(64, 4 * scheduler.max_concurrency)
    if limit < 1:
        raise ValueError("window must be at least 1")
    pending: dict[asyncio.Future[Result], tuple[int, Any]] = {}
    order: deque[asyncio.Future[Result] | Outcome] = deque()  # only used when ordered
    source = _aiter(prompts)
    index = 0
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < limit:
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                outcome_or_future = _submit(scheduler, index, item, defaults, pending)
                if ordered:
                    order.append(outcome_or_future)
                elif isinstance(outcome_or_future, Outcome):
                    yield outcome_or_future
                index += 1
            if ordered:
                while order and (isinstance(order[0], Outcome) or order[0].done()):
                    head = order.popleft()
                    yield head if isinstance(head, Outcome) else _outcome(head, pending)
                if exhausted and not order:
                    return
                oldest = order[0] if order else None
                if isinstance(oldest, asyncio.Future):
                    # The window is full (or the input ended): wait for the oldest job.
                    await asyncio.wait({oldest})
                continue
            if not pending:
                if exhausted:
                    return
                continue
            done, _ = await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                yield _outcome(future, pending)
    finally:
        for future in pending:
            future.cancel()


def _submit(
    scheduler: Scheduler,
    index: int,
    item: PromptItem,
    defaults: Mapping[str, Any],
    pending: dict[asyncio.Future[Result], tuple[int, Any]],
) -> asyncio.Future[Result] | Outcome:
    try:
        prompt, options = _split_item(item, defaults)
        future = scheduler.submit_nowait(prompt, **options)
    except SchedulerError as exc:
        return Outcome(index, None, exc, None)
    pending[future] = (index, options.get("metadata"))
    return future


def _outcome(
    future: asyncio.Future[Result], pending: dict[asyncio.Future[Result], tuple[int, Any]]
) -> Outcome:
    index, metadata = pending.pop(future)
    if future.cancelled():
        return Outcome(index, None, SchedulerError("the job was cancelled"), metadata)
    error = future.exception()
    if error is None:
        return Outcome(index, future.result(), None, metadata)
    if isinstance(error, SchedulerError):
        return Outcome(index, None, error, metadata)
    return Outcome(index, None, SchedulerError(f"unexpected error: {error!r}"), metadata)
