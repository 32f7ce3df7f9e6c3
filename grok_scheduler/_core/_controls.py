"""The scheduler's run controls: pause and resume sending; statistics and the HTML report.

A mixin, so the scheduler module stays one concept and within its size.
"""

from __future__ import annotations

import os

from .._clock import Clock
from .._guards._breaker import CircuitBreaker
from .._guards._budget import Budget
from .._observe._alerts import AlertMonitor
from .._observe._stats import SchedulerStatistics, StatsRecorder, queue_levels
from .._observe._timeline import Timeline
from ._gate import GateState, Wakeup
from ._lanes import Lanes
from ._settings import SchedulerSettings

__all__ = ["RunControls"]


class RunControls:
    """Adds :meth:`pause`, :meth:`resume`, :meth:`statistics` and :meth:`write_report`."""

    __slots__ = ()
    _alerts: AlertMonitor
    _breaker: CircuitBreaker
    _budget: Budget | None
    _clock: Clock
    _lanes: Lanes
    _settings: SchedulerSettings
    _state: GateState
    _stats: StatsRecorder
    _timeline: Timeline
    _wakeup: Wakeup

    # -- flow -------------------------------------------------------------------------------
    def pause(self) -> None:
        """Send nothing new until :meth:`resume`: queued jobs and retries wait in the queue.

        Calls on the wire go on. What Ctrl-C once does in ``grok-scheduler run``: a job held
        back here is never sent, so no timeout can count against it (held in a draining
        transport instead, the watchdog cut it again and again until it failed).
        """
        self._state.paused = True

    def resume(self) -> None:
        """Send again after :meth:`pause`."""
        self._state.paused = False
        self._wakeup.poke()

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._state.paused

    # -- introspection ----------------------------------------------------------------------
    def statistics(self) -> SchedulerStatistics:
        """A frozen snapshot of queue, limits, counters and token use."""
        now = self._clock.now()
        default = self._lanes.existing(self._settings.model)
        return self._stats.snapshot(
            queued=self._lanes.queued(),
            in_flight=self._state.in_flight,
            limiter=default.limiter.state(now) if default is not None else None,
            queue_by_priority=queue_levels(self._lanes.waiting(), now),
            models={lane.model: lane.statistics(now) for lane in self._lanes},
            breaker_state=self._breaker.state,
            active_alerts=self._alerts.active(),
            budget_used_fraction=self._budget.used_fraction if self._budget else None,
            timeline=self._timeline.snapshot(now),
        )

    def write_report(
        self, path: str | os.PathLike[str], *, refresh_seconds: float | None = None
    ) -> None:
        """Write the run so far as one self-contained HTML file (needs the ``report`` extra).

        Requests/s and tokens/min against the learned limit per model, 429s and retries marked,
        calls in flight, call-time percentiles and the summary. ``refresh_seconds`` makes a
        browser reload the page that often (for a file rewritten during a live run).
        """
        from .._observe._report import write_report

        write_report(self.statistics(), path, refresh_seconds=refresh_seconds)
