"""The credit source: buckets, the two-dimensional limiter, resizing and header sync."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler import LocalLimiter, RateLimitHeaders
from grok_scheduler._limits._bucket import Bucket


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


def test_limiter_binds_on_tokens_when_they_run_out_first() -> None:
    """600 tokens/min keeps 0.25 s of refill in hand: after 597, 100 more wait 9.95 s at 10/s."""
    limiter = LocalLimiter(requests_per_second=100, tokens_per_minute=600, now=0.0)
    assert limiter.try_acquire(597, 0.0) == 0.0
    assert limiter.try_acquire(100, 0.0) == pytest.approx(9.95)


def test_settle_returns_unused_tokens_and_refund_returns_everything() -> None:
    """Settling 540 reserved against 60 used frees 480; a refund frees the request too."""
    limiter = LocalLimiter(requests_per_second=100, tokens_per_minute=600, now=0.0)
    assert limiter.try_acquire(540, 0.0) == 0.0
    limiter.settle(540, 60, 0.0)
    state = limiter.state(0.0)
    assert state.tokens_available == pytest.approx(537.5)
    limiter.refund(480, 0.0)
    assert limiter.try_acquire(540, 0.0) == 0.0


def test_pause_holds_every_acquisition() -> None:
    """pause_until blocks credit even when the buckets are full."""
    limiter = LocalLimiter(requests_per_second=10, tokens_per_minute=None, now=0.0)
    limiter.pause_until(3.0, 0.0, "429")
    assert limiter.try_acquire(1, 1.0) == pytest.approx(2.0)
    assert limiter.try_acquire(1, 3.0) == 0.0


def test_headers_resize_and_synchronise_the_limiter() -> None:
    """OpenAI-style limits resize the buckets; zero remaining pauses until the reset."""
    limiter = LocalLimiter(requests_per_second=40, tokens_per_minute=None, now=0.0)
    limiter.observe_headers(
        RateLimitHeaders(
            requests_limit=600, requests_window=60, tokens_limit=10000, tokens_window=60
        ),
        0.0,
    )
    assert limiter.requests_per_second == pytest.approx(10)
    assert limiter.tokens_per_minute == pytest.approx(10000)
    limiter.observe_headers(RateLimitHeaders(requests_remaining=0, requests_reset=1.5), 0.0)
    assert limiter.try_acquire(1, 1.0) == pytest.approx(0.5)


def test_request_bucket_starts_half_full() -> None:
    """Before hearing from the server, only half the burst goes at once (the limit may be wrong)."""
    limiter = LocalLimiter(requests_per_second=20, tokens_per_minute=None, now=0.0)
    admitted = sum(limiter.try_acquire(0, 0.0) == 0.0 for _ in range(20))
    assert admitted == 9


def test_unlimited_dimensions_never_wait() -> None:
    """A limiter with no limits admits at once."""
    limiter = LocalLimiter(requests_per_second=None, tokens_per_minute=None, now=0.0)
    assert all(limiter.try_acquire(10**6, 0.0) == 0.0 for _ in range(1000))


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_invalid_limits_are_refused(bad: float) -> None:
    """Zero, negative and non-finite limits raise ValueError."""
    with pytest.raises(ValueError):
        LocalLimiter(requests_per_second=bad, tokens_per_minute=None)


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
