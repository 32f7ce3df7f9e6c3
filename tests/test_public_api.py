"""The public API: `__all__` is pinned, and every name in it imports and is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import grok_scheduler

# The exact, sorted public surface today. Adding or removing a name is an API change: update
# this list on purpose, never to make the test pass.
PUBLIC_NAMES = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AdaptivePolicy",
    "AiohttpTransport",
    "Alert",
    "AlertPolicy",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BreakerPolicy",
    "BudgetExceededError",
    "Clock",
    "DEFAULT_BASE_URL",
    "DeadlineExceededError",
    "Endpoint",
    "FakeClock",
    "Histogram",
    "InternalServerError",
    "InvalidJobError",
    "LatencySummary",
    "Limiter",
    "LimiterError",
    "LimiterState",
    "LocalLimiter",
    "LoopClock",
    "MockStream",
    "MockStreamTransport",
    "MockTransport",
    "ModelNotAvailableError",
    "NotFoundError",
    "Outcome",
    "OutcomeStream",
    "PermissionDeniedError",
    "Priority",
    "QueueLevel",
    "QuotaExhaustedError",
    "RateLimitError",
    "RateLimitHeaders",
    "RequestTooLargeError",
    "Result",
    "ResultStream",
    "RetryPolicy",
    "Scheduler",
    "SchedulerClosedError",
    "SchedulerError",
    "SchedulerStatistics",
    "StreamChunk",
    "StreamingTransport",
    "Transport",
    "TransportResponse",
    "UnprocessableEntityError",
    "Usage",
    "parse_rate_limit_headers",
    "render_metrics",
    "start_metrics_server",
]

# Public names that are plain values rather than classes or functions: a str has no docstring
# of its own to check, so they are listed here and nowhere else may skip the docstring rule.
PUBLIC_VALUES = {"DEFAULT_BASE_URL"}


def test_all_is_exactly_the_pinned_sorted_list() -> None:
    """``__all__`` equals the pinned list, with no duplicates, in sorted order."""
    assert list(grok_scheduler.__all__) == PUBLIC_NAMES
    assert sorted(PUBLIC_NAMES) == PUBLIC_NAMES
    assert len(set(PUBLIC_NAMES)) == len(PUBLIC_NAMES)


def test_star_import_gives_exactly_the_public_names() -> None:
    """``from grok_scheduler import *`` binds every public name and nothing else."""
    namespace: dict[str, object] = {}
    exec("from grok_scheduler import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == PUBLIC_NAMES


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_imports(name: str) -> None:
    """Each public name is importable from the top-level package as a real object."""
    module = importlib.import_module("grok_scheduler")
    assert getattr(module, name) is not None


@pytest.mark.parametrize("name", sorted(set(PUBLIC_NAMES) - PUBLIC_VALUES))
def test_every_public_class_and_function_has_its_own_docstring(name: str) -> None:
    """Each public class or function carries a non-empty docstring of its own."""
    obj = getattr(grok_scheduler, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj), (
        f"{name} is neither: list it in PUBLIC_VALUES"
    )
    # A class's __doc__ is not inherited, so this is the class's own docstring.
    doc = obj.__doc__
    assert doc is not None and doc.strip(), f"grok_scheduler.{name} has no docstring"


@pytest.mark.parametrize("name", sorted(PUBLIC_VALUES))
def test_public_values_are_plain_values(name: str) -> None:
    """The public names excused from the docstring rule really are plain values."""
    assert isinstance(getattr(grok_scheduler, name), str | int | float)
