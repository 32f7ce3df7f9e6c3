"""The API key never leaks: not in debug logs, exception messages, reprs, tracebacks, results."""

from __future__ import annotations

import asyncio
import io
import logging
import traceback
from collections.abc import Iterator

import pytest
import structlog
from conftest import SimulatorFactory

from grok_scheduler import BreakerPolicy, RetryPolicy, Scheduler
from grok_scheduler.simulator import FAULT_KINDS, SimulatorConfig

KEY = "xai-LEAKCANARYq7Zp4Rw9Xk2Mv8Nt3Bs6Hy1Jd5Fg0Lc"
SECRET_PART = KEY.removeprefix("xai-")
FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.02, max_attempts=2)


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """structlog at debug, rendering everything (tracebacks too) into a buffer; then restored."""
    buffer = io.StringIO()
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=buffer),
        cache_logger_on_first_use=False,
    )
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        structlog.configure(**previous)


def _describe(outcome: object) -> str:
    """Everything a user could print about an outcome: str, repr, traceback chain, history."""
    parts = [str(outcome), repr(outcome)]
    if isinstance(outcome, BaseException):
        parts.append("".join(traceback.format_exception(outcome)))
        parts.extend(repr(record) for record in getattr(outcome, "history", ()))
        parts.append(repr(getattr(outcome, "body", None)))
    else:
        parts.append(repr(getattr(outcome, "body", None)))
    return "\n".join(parts)


def _assert_clean(text: str) -> None:
    assert KEY not in text
    assert SECRET_PART not in text
    assert SECRET_PART[:12] not in text


async def test_no_failure_kind_leaks_the_key(
    make_simulator: SimulatorFactory,
    log_buffer: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every fault kind, a wrong key and timeouts, at debug level: the key appears nowhere."""
    caplog.set_level(logging.DEBUG)
    config = SimulatorConfig(latency=0.0, requests_per_second=None, hang_seconds=30.0, seed=3)
    captured: list[str] = []
    for kind in sorted(FAULT_KINDS):
        sim = await make_simulator(config)
        sim.fail_next(kind, 2)
        async with Scheduler(
            api_key=KEY,
            base_url=sim.base_url,
            max_concurrency=2,
            retry=FAST_RETRY,
            breaker=BreakerPolicy(cooldown=0.05, max_cooldown=0.1),
        ) as scheduler:
            futures = [
                scheduler.submit_nowait(f"{kind} {i}", max_tokens=8, timeout=0.2) for i in range(3)
            ]
            async with asyncio.timeout(10):
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
            captured.extend(_describe(o) for o in outcomes)
            captured.append(repr(scheduler))
            captured.append(repr(scheduler.statistics()))
        assert sim.stats.faults.get(kind), kind
    # The server expects another key: the real one is presented and refused (xAI's 400).
    sim.config.api_key = "xai-the-server-expects-this-other-key-000"
    async with Scheduler(api_key=KEY, base_url=sim.base_url, retry=FAST_RETRY) as scheduler:
        outcomes = await asyncio.gather(
            *(scheduler.submit(f"bad key {i}") for i in range(2)), return_exceptions=True
        )
        with pytest.raises(Exception) as refused:
            await scheduler.submit("after the bad key")
        captured.extend(_describe(o) for o in outcomes)
        captured.append(_describe(refused.value))
        captured.append(repr(scheduler))
    assert any("AuthenticationError" in text for text in captured)
    logs = log_buffer.getvalue()
    assert "grok_scheduler.failed" in logs  # the buffer really received the events
    out, err = capsys.readouterr()
    for text in [*captured, logs, caplog.text, out, err]:
        _assert_clean(text)


def test_reprs_of_the_configured_objects_hide_the_key() -> None:
    """An unstarted Scheduler and its transport show the base URL but not the key."""
    scheduler = Scheduler(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    _assert_clean(repr(scheduler))
    _assert_clean(repr(scheduler._transport))
