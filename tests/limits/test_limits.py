"""The credit source in this process: buckets, LocalLimiter's own rules, the shared resync rule.

What every limiter must answer alike (LocalLimiter and RedisLimiter) is in
test_limiter_contract.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grok_scheduler
from grok_scheduler import LocalLimiter
from grok_scheduler._limits._base import Resync, resync
from grok_scheduler._limits._bucket import Bucket

LIMITS = Path(grok_scheduler.__file__).parent / "_limits"


def test_bucket_waits_exactly_for_the_missing_credit() -> None:
    """An empty bucket at 4/s needs 0.25 s for one unit."""
    bucket = Bucket(rate=4.0, capacity=2.0, now=0.0)
    bucket.take(2.0, 0.0)
    assert bucket.delay(1.0, 0.0) == pytest.approx(0.25)
    assert bucket.delay(1.0, 0.25) == 0.0


def test_bucket_float_dust_counts_as_available() -> None:
    """A level a hair below the cost after refill arithmetic does not ask for a tiny wait."""
    bucket = Bucket(rate=10.0, capacity=9.0, now=1000.0)
    bucket.take(9.0, 1000.0)
    for step in range(1, 91):
        now = 1000.0 + step * 0.1
        assert bucket.delay(1.0, now) == 0.0
        bucket.take(1.0, now)


def test_oversized_request_goes_when_full_and_leaves_debt() -> None:
    """A cost above capacity is admitted from a full bucket and the debt delays the next one."""
    bucket = Bucket(rate=1.0, capacity=10.0, now=0.0)
    assert bucket.delay(15.0, 0.0) == 0.0
    bucket.take(15.0, 0.0)
    assert bucket.delay(1.0, 0.0) == pytest.approx(6.0)


def test_debt_is_capped_at_one_bucket() -> None:
    """Absurd usage (a server bug) leaves at most one bucket of debt, not a stall forever."""
    bucket = Bucket(rate=1.0, capacity=10.0, now=0.0)
    bucket.take(10.0**12, 0.0)
    assert bucket.delay(1.0, 0.0) == pytest.approx(11.0)


def test_resize_never_raises_the_level() -> None:
    """Growing the capacity keeps the level; shrinking clamps it."""
    bucket = Bucket(rate=1.0, capacity=10.0, now=0.0)
    bucket.take(5.0, 0.0)
    bucket.resize(rate=100.0, capacity=100.0, now=0.0)
    assert bucket.level(0.0) == pytest.approx(5.0)
    bucket.resize(rate=1.0, capacity=2.0, now=0.0)
    assert bucket.level(0.0) == pytest.approx(2.0)


def test_request_bucket_starts_half_full() -> None:
    """Before hearing from the server, only half the burst goes at once (the limit may be wrong)."""
    limiter = LocalLimiter(requests_per_second=20, tokens_per_minute=None, now=0.0)
    admitted = sum(limiter.try_acquire(0, 0.0) == 0.0 for _ in range(20))
    assert admitted == 9


@pytest.mark.parametrize(
    ("remaining", "reset", "rate_known", "expected"),
    [
        (None, 5.0, False, Resync()),
        (7.0, None, False, Resync(clamp=7.0)),
        (1.0, 5.0, False, Resync(clamp=1.0)),
        (0.0, 1.5, False, Resync(pause=1.5)),
        (0.5, 1.5, False, Resync(pause=1.5)),
        (0.0, 3600.0, False, Resync(pause=60.0)),
        (0.0, None, False, Resync(clamp=0.0)),
        (0.0, 0.0, False, Resync(clamp=0.0)),
        # A known rate: the next unit is one refill step away, not at the time-to-full reset.
        (0.0, 1.5, True, Resync(clamp=0.0)),
        (7.0, 1.5, True, Resync(clamp=7.0)),
    ],
)
def test_resync_rule(
    remaining: float | None, reset: float | None, rate_known: bool, expected: Resync
) -> None:
    """The server's count clamps; nothing left empties a known bucket, else pauses (<= 60 s)."""
    assert resync(remaining, reset, rate_known=rate_known) == expected


def test_limits_import_nothing_from_the_wire_or_http() -> None:
    """_limits/ is credit only: no _wire, no HTTP client, no structlog, no CLI."""
    forbidden = ("_wire", "_transports", "aiohttp", "structlog", "rich", "anyio", "cli")
    for module in sorted(LIMITS.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                assert not any(part in forbidden for part in parts), f"{module.name}: {name}"


operations = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.5),  # time step
        st.sampled_from(["acquire", "refund", "resize"]),
        st.floats(min_value=1.0, max_value=50.0),  # new rps for resize
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_admissions_never_exceed_rate_plus_burst(ops: list[tuple[float, str, float]]) -> None:
    """In any window, net admissions stay within the largest rate seen x window + burst."""
    limiter = LocalLimiter(requests_per_second=10, tokens_per_minute=None, now=0.0)
    now = 0.0
    admitted: list[float] = []
    max_rate = 10.0
    for step, op, rps in ops:
        now += step
        if op == "acquire":
            if limiter.try_acquire(1, now) == 0.0:
                admitted.append(now)
        elif op == "refund" and admitted:
            admitted.pop()
            limiter.refund(0, now)
        elif op == "resize":
            limiter.set_limits(
                requests_per_second=rps, tokens_per_minute=None, now=now, reason="test"
            )
            max_rate = max(max_rate, rps)
    for i, start in enumerate(admitted):
        in_window = sum(1 for t in admitted[i:] if t < start + 1.0)
        assert in_window <= max_rate * 1.0 + max(1.0, 0.9 * max_rate) + 1e-6
