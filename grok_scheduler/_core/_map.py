"""``Scheduler.map``: stream any iterable of prompts through the scheduler with bounded look-ahead.

Only ``window`` jobs are in the scheduler at a time, so an endless or million-line input costs
the memory of ``window`` futures, not of the whole input. Outcomes come back as they finish, or
in input order with ``ordered=True`` (then a slow job holds back later ones; the window then
counts the held-back outcomes too, so memory stays bounded).

Completion is pushed, not polled: each future gets one done-callback that files its outcome and
wakes the consumer, so the cost per job is constant whatever the window size.

An async source is read by one task at a time, raced against finished outcomes: an outcome is
yielded while the source is still waiting for its next item, so a source that waits for results
(a producer fed by its own consumer) never deadlocks and nothing finished is held back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from .._errors import InvalidJobError, SchedulerError
from .._models import Endpoint, Result

__all__ = [
    "Outcome",
    "OutcomeStream",
    "PromptItem",
    "Rejected",
    "Submitter",
    "map_prompts",
]

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
_PROMPT_FIELDS = frozenset({"prompt", "messages"})
# What a pull returns once the source is exhausted.
_END: Any = object()


class Submitter(Protocol):
    """What a stream needs of a scheduler: a pool size and a non-blocking submit.

    A protocol rather than ``Scheduler`` itself, so this module never imports the scheduler.
    """

    @property
    def max_concurrency(self) -> int:
        """How many calls may be in flight at once (sizes the default window)."""
        ...

    # Spelled out, not ``**options: Any``: mypy then checks that Scheduler still fits.
    def submit_nowait(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        priority: int = ...,
        model: str | None = ...,
        max_tokens: int | None = ...,
        temperature: float | None = ...,
        endpoint: Endpoint | str | None = ...,
        timeout: float | None = ...,
        deadline: float | None = ...,
        metadata: Any = ...,
        extra_body: Mapping[str, Any] | None = ...,
    ) -> asyncio.Future[Result]:
        """Queue one job and return its future at once."""
        ...


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


@dataclass(frozen=True, slots=True)
class Rejected:
    """What a ``prepare`` hook returns for an item that must not be submitted (a bad line)."""

    error: SchedulerError
    metadata: Any = None


Prepared: TypeAlias = tuple[Any, dict[str, Any]] | Rejected
"""``(prompt, submit options)`` for :meth:`Scheduler.submit_nowait`, or :class:`Rejected`."""


def split_item(item: Any, defaults: Mapping[str, Any]) -> Prepared:
    """The default ``prepare``: a prompt, a message list, or a mapping of submit options."""
    options = dict(defaults)
    if isinstance(item, Mapping):
        unknown = item.keys() - _SUBMIT_OPTIONS - _PROMPT_FIELDS
        if unknown:
            error = InvalidJobError(f"unknown fields in a map item: {sorted(unknown)}")
            return Rejected(error, item.get("metadata", options.get("metadata")))
        prompt = item.get("prompt", item.get("messages"))
        options.update({k: v for k, v in item.items() if k in _SUBMIT_OPTIONS})
        return prompt, options
    return item, options


async def _aiter(items: AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
    # Our own generator around the user's iterable: aclose() then stops our reading without
    # closing an iterable the user may still hold.
    async for item in items:
        yield item


async def _pull(source: AsyncGenerator[Any, None]) -> Any:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return _END


class OutcomeStream:
    """An async iterator of :class:`Outcome` over a bounded window of scheduler jobs.

    ``close_input()`` stops taking new items (what is submitted still finishes);
    ``cancel()`` cancels every unfinished job: iteration then yields what already finished and
    ends. ``aclose()`` (or ``async with``) does ``cancel()`` for a consumer that stops early.
    """

    __slots__ = (
        "_completed",
        "_exhausted",
        "_input_closed",
        "_items",
        "_limit",
        "_next_index",
        "_on_done",
        "_order",
        "_ordered",
        "_pending",
        "_prepare",
        "_pull",
        "_scheduler",
        "_source",
        "_stopped",
        "_wakeup",
    )

    def __init__(
        self,
        scheduler: Submitter,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        ordered: bool = False,
        window: int | None = None,
        prepare: Callable[[Any], Prepared] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        limit = window if window is not None else max(64, 4 * scheduler.max_concurrency)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"window must be an int of at least 1, got {window!r}")
        if prepare is None:
            fixed = dict(defaults or {})

            def prepare(item: Any) -> Prepared:
                return split_item(item, fixed)

        self._scheduler = scheduler
        self._prepare = prepare
        # A plain iterable never makes us wait: it is read inline. An async one is read by
        # ``_pull``, one item at a time, in a task the consumer races against finished outcomes.
        self._items: Iterator[Any] | None = None
        self._source: AsyncGenerator[Any, None] | None = None
        if isinstance(items, AsyncIterable):
            self._source = _aiter(items)
        else:
            self._items = iter(items)
        self._pull: asyncio.Task[Any] | None = None
        self._ordered = ordered
        self._limit = limit
        self._next_index = 0
        self._exhausted = False
        self._input_closed = False
        self._stopped = False
        # Unfinished (and, when ordered, held-back) jobs: future -> (index, metadata).
        self._pending: dict[asyncio.Future[Result], tuple[int, Any]] = {}
        self._completed: deque[Outcome] = deque()  # unordered: finished, not yet yielded
        self._order: deque[asyncio.Future[Result] | Outcome] = deque()  # ordered: input order
        self._wakeup: asyncio.Future[None] | None = None
        self._on_done = self._unordered_done if not ordered else self._ordered_done

    def __repr__(self) -> str:
        return (
            f"OutcomeStream(ordered={self._ordered}, window={self._limit}, "
            f"outstanding={self._outstanding()}, "
            f"input_closed={self._input_closed or self._exhausted})"
        )

    # -- consumer side -----------------------------------------------------------------------
    def __aiter__(self) -> OutcomeStream:
        return self

    async def __anext__(self) -> Outcome:
        while True:
            self._take_pulled()
            self._fill()
            outcome = self._ready()
            if outcome is not None:
                return outcome
            if self._stopped or (
                (self._exhausted or self._input_closed) and self._outstanding() == 0
            ):
                raise StopAsyncIteration
            # Woken by a finished outcome or by the source's next item, whichever comes first.
            wakeup = asyncio.get_running_loop().create_future()
            self._wakeup = wakeup
            try:
                await wakeup
            finally:
                self._wakeup = None

    async def __aenter__(self) -> OutcomeStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel unfinished jobs and stop reading the input."""
        self.cancel()
        self._completed.clear()
        self._order.clear()
        pull, self._pull = self._pull, None
        if pull is not None:
            # A generator cannot be closed while a pull is inside it: let the cancel land.
            # asyncio.wait never raises the task's outcome, only our own cancellation.
            await asyncio.wait((pull,))
        if self._source is not None:
            await self._source.aclose()

    def close_input(self) -> None:
        """Take no more items; jobs already submitted still finish and are yielded."""
        self._input_closed = True
        self._stop_pull()
        self._wake()

    def cancel(self) -> None:
        """Cancel unfinished jobs; iteration yields what already finished, then ends."""
        self._input_closed = True
        self._stopped = True
        for future in list(self._pending):
            if future.done():
                # Finished, but its callback has not run yet: keep the answer.
                self._on_done(future)
            else:
                del self._pending[future]
                future.cancel()
        self._stop_pull()
        self._wake()

    def ready_nowait(self) -> list[Outcome]:
        """The outcomes that can be yielded without waiting (e.g. after :meth:`cancel`)."""
        ready: list[Outcome] = []
        while (outcome := self._ready()) is not None:
            ready.append(outcome)
        return ready

    @property
    def outstanding(self) -> int:
        """Jobs submitted and not yet yielded."""
        return self._outstanding()

    # -- internals ---------------------------------------------------------------------------
    def _outstanding(self) -> int:
        return len(self._order) if self._ordered else len(self._pending) + len(self._completed)

    def _fill(self) -> None:
        """Submit items while the window has room; for an async source, start its next pull."""
        while not (self._exhausted or self._input_closed) and self._outstanding() < self._limit:
            if self._items is None:
                assert self._source is not None
                if self._pull is None:
                    self._pull = asyncio.ensure_future(_pull(self._source))
                    self._pull.add_done_callback(self._pulled)
                return
            item = next(self._items, _END)
            if item is _END:
                self._exhausted = True
                return
            self._submit(item)

    def _pulled(self, pull: asyncio.Task[Any]) -> None:
        if not pull.cancelled():
            pull.exception()  # retrieved here, raised to the consumer by _take_pulled
        self._wake()

    def _take_pulled(self) -> None:
        """Submit the item a finished pull brought, or raise the error the source raised."""
        pull = self._pull
        if pull is None or not pull.done():
            return
        self._pull = None
        if pull.cancelled():
            return  # by close_input()/cancel(), or from outside: the next pull will tell
        item = pull.result()
        if item is _END:
            self._exhausted = True
        elif not self._input_closed:
            self._submit(item)

    def _stop_pull(self) -> None:
        pull = self._pull
        if pull is not None and not pull.done():
            pull.cancel()

    def _submit(self, item: Any) -> None:
        index = self._next_index
        self._next_index += 1
        prepared = self._prepare(item)
        if isinstance(prepared, Rejected):
            self._file(Outcome(index, None, prepared.error, prepared.metadata))
            return
        prompt, options = prepared
        try:
            future = self._scheduler.submit_nowait(prompt, **options)
        except SchedulerError as exc:
            self._file(Outcome(index, None, exc, options.get("metadata")))
            return
        self._pending[future] = (index, options.get("metadata"))
        if self._ordered:
            self._order.append(future)
        future.add_done_callback(self._on_done)

    def _file(self, outcome: Outcome) -> None:
        if self._ordered:
            self._order.append(outcome)
        else:
            self._completed.append(outcome)

    def _unordered_done(self, future: asyncio.Future[Result]) -> None:
        entry = self._pending.pop(future, None)
        if entry is None:  # cancelled by cancel(), or already filed
            return
        self._completed.append(_outcome(future, *entry))
        self._wake()

    def _ordered_done(self, future: asyncio.Future[Result]) -> None:
        if self._order and self._order[0] is future:
            self._wake()

    def _ready(self) -> Outcome | None:
        if not self._ordered:
            return self._completed.popleft() if self._completed else None
        order = self._order
        while order:
            head = order[0]
            if isinstance(head, Outcome):
                order.popleft()
                return head
            entry = self._pending.get(head)
            if entry is None:  # cancelled by cancel(): skip it
                order.popleft()
                continue
            if not head.done():
                return None
            order.popleft()
            del self._pending[head]
            return _outcome(head, *entry)
        return None

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)


def map_prompts(
    scheduler: Submitter,
    prompts: Iterable[PromptItem] | AsyncIterable[PromptItem],
    *,
    ordered: bool = False,
    window: int | None = None,
    **defaults: Any,
) -> OutcomeStream:
    """Submit ``prompts`` with at most ``window`` outstanding; yield an :class:`Outcome` each."""
    return OutcomeStream(scheduler, prompts, ordered=ordered, window=window, defaults=defaults)


def _outcome(future: asyncio.Future[Result], index: int, metadata: Any) -> Outcome:
    if future.cancelled():
        return Outcome(index, None, SchedulerError("the job was cancelled"), metadata)
    error = future.exception()
    if error is None:
        return Outcome(index, future.result(), None, metadata)
    if isinstance(error, SchedulerError):
        return Outcome(index, None, error, metadata)
    return Outcome(index, None, SchedulerError(f"unexpected error: {error!r}"), metadata)
