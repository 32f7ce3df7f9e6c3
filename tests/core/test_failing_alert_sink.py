"""A failing log sink or alert hook never loses a job (issue 13, item 2).

The queue-wait alert fires at the gate right after a job leaves the queue. If logging the alert
raised there, the job just popped was neither sent nor failed: its future never resolved and
``aclose()`` returned anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import structlog
from fakes import Server, make_scheduler

from grok_scheduler import Alert, AlertPolicy, FakeClock, Result
from grok_scheduler._observe._events import LOGGER_NAME

JOBS = 8


class _Broken(Exception):
    """What the failing sink raises."""


class _RaisingSink(logging.Filter):
    """A log sink that fails on every event it is handed (a stdlib filter or a structlog
    processor, whichever way the events are routed)."""

    def __init__(self) -> None:
        super().__init__()
        self.records = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.records += 1
        raise _Broken("the log sink is down")

    def __call__(self, logger: object, method: str, event: object) -> object:
        self.records += 1
        raise _Broken("the log sink is down")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["stdlib", "structlog"])
def failing_sink(request: pytest.FixtureRequest) -> Iterator[_RaisingSink]:
    """A failing sink on the route the events take: the stdlib logger when structlog is not
    configured (the library default), structlog's processors when it is (as the CLI does)."""
    sink = _RaisingSink()
    logger = logging.getLogger(LOGGER_NAME)
    was_configured = structlog.is_configured()
    previous = structlog.get_config()
    structlog.reset_defaults()
    if request.param == "structlog":
        structlog.configure(processors=[sink])
    else:
        logger.addFilter(sink)
    try:
        yield sink
    finally:
        logger.removeFilter(sink)
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**previous)


def _raising_hook(alert: Alert) -> None:
    raise _Broken(f"the alert hook is down ({alert.kind})")


@pytest.mark.parametrize("hook", [None, _raising_hook], ids=["sink", "sink-and-hook"])
async def test_every_job_ends_when_the_queue_wait_alert_cannot_be_logged(
    clock: FakeClock, failing_sink: _RaisingSink, hook: object
) -> None:
    """Jobs queued past max_queue_wait with a raising log sink: all answered, aclose returns."""
    server = Server(clock, latency=0.0)
    scheduler = make_scheduler(
        clock,
        server,
        requests_per_second=1,
        max_concurrency=1,
        alerts=AlertPolicy(max_queue_wait=2.0),
        on_alert=hook,
    )
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
    await clock.run_until_done(asyncio.ensure_future(asyncio.wait(futures)), limit=60.0)
    closing = asyncio.ensure_future(scheduler.aclose())
    await clock.run_until_done(closing, limit=60.0)
    assert failing_sink.records > 0  # the alert did fire into the failing sink
    assert all(isinstance(f.result(), Result) for f in futures)
    assert sorted(server.prompts) == sorted(f"job {i}" for i in range(JOBS))
    assert scheduler.statistics().completed == JOBS


async def test_every_job_ends_when_only_the_alert_hook_raises(clock: FakeClock) -> None:
    """A raising on_alert alone (logging fine): all jobs answered, the alert still seen."""
    seen: list[Alert] = []

    def hook(alert: Alert) -> None:
        seen.append(alert)
        raise _Broken("the alert hook is down")

    server = Server(clock, latency=0.0)
    scheduler = make_scheduler(
        clock,
        server,
        requests_per_second=1,
        max_concurrency=1,
        alerts=AlertPolicy(max_queue_wait=2.0),
        on_alert=hook,
    )
    await scheduler.start()
    futures = [scheduler.submit_nowait(f"job {i}") for i in range(JOBS)]
    await clock.run_until_done(asyncio.ensure_future(asyncio.wait(futures)), limit=60.0)
    closing = asyncio.ensure_future(scheduler.aclose())
    await clock.run_until_done(closing, limit=60.0)
    assert [alert.kind for alert in seen][:1] == ["queue_wait"]
    assert all(isinstance(f.result(), Result) for f in futures)
