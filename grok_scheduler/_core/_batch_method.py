"""``Scheduler.submit_batch``: the Batch API road (and the two-road ``auto``) as a method.

A mixin, so the scheduler module stays one concept and within its size; the work is done in
:mod:`grok_scheduler._batch._library`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from .._batch._library import BatchRun
from .._clock import Clock
from .._transports._rest import Rest
from ._map import PromptItem
from ._settings import SchedulerSettings

if TYPE_CHECKING:
    from .._batch._roads import OnlineRoad

__all__ = ["BatchMethods"]


class BatchMethods:
    """Adds :meth:`submit_batch` to the scheduler."""

    __slots__ = ()
    _settings: SchedulerSettings
    _clock: Clock

    def submit_batch(
        self,
        prompts: Iterable[PromptItem],
        *,
        via: str = "batch",
        deadline: float | None = None,
        state_file: str | os.PathLike[str] | None = None,
        api_key: str | None = None,
        rest: Rest | None = None,
        poll_min: float = 5.0,
        poll_max: float = 60.0,
        batch_delay: float | None = None,
        **defaults: Any,
    ) -> BatchRun:
        """Run ``prompts`` (items as for :meth:`map`) through xAI's Batch API.

        ``via="batch"``: every item by batch (half the price, answers within 24 h).
        ``via="auto"`` with ``deadline`` (seconds from now): online at the learned limit, and
        what cannot finish in time by batch; CRITICAL/HIGH items always online, LOW by batch.
        ``batch_delay``: seconds you expect the Batch API to take until the run sees it answer
        (default an hour); ``run.at_risk`` says when the deadline is no longer expected.
        Use ``async with scheduler.submit_batch(...) as run: async for outcome in run``; each
        :class:`RoadOutcome` says its road. Leaving early or ``await run.cancel()`` cancels the
        remote batches. The Batch API needs the key again (``api_key=`` or ``XAI_API_KEY``).
        """
        return BatchRun(
            cast("OnlineRoad", self),
            prompts,
            base_url=self._settings.base_url,
            clock=self._clock,
            via=via,
            deadline=deadline,
            state_file=state_file,
            api_key=api_key,
            rest=rest,
            poll_min=poll_min,
            poll_max=poll_max,
            batch_delay=batch_delay,
            defaults=defaults,
        )
