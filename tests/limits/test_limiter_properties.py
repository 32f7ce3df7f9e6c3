"""Property test of the local limiter: it never admits more than rate x window + burst."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler import LocalLimiter, RateLimitHeaders

acquire = st.tuples(st.just("acquire"), st.integers(min_value=0, max_value=500))


settle = st.tuples(st.just("settle"), st.floats(min_value=0.0, max_value=2.0))


refund = st.tuples(st.just("refund"), st.just(0))


resize = st.tuples(
    st.just("resize"),
    st.tuples(st.floats(min_value=1.0, max_value=50.0), st.floats(min_value=600, max_value=60000)),
)


headers_op = st.tuples(
    st.just("headers"),
    st.tuples(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=60000)),
)


pause = st.tuples(st.just("pause"), st.floats(min_value=0.0, max_value=2.0))


limiter_ops = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.3),
        st.one_of(acquire, acquire, acquire, settle, refund, resize, headers_op, pause),
    ),
    min_size=1,
    max_size=250,
)


@dataclass
class _Ledger:
    """Net credit charged per event: (time, requests, tokens, was an admission)."""

    events: list[tuple[float, int, float, bool]] = field(default_factory=list)
    open: list[int] = field(default_factory=list)  # reservations not yet settled or refunded


@settings(max_examples=200, deadline=None)
@given(limiter_ops)
def test_limiter_never_admits_more_than_rate_times_window_plus_burst(
    ops: list[tuple[float, tuple[str, object]]],
) -> None:
    """For requests and tokens, under any mix of acquisitions, settlements, refunds, resizes,
    header syncs and pauses: net credit charged in a window ending at an admission is at most
    the largest rate seen x window + the largest burst seen."""
    limiter = LocalLimiter(requests_per_second=10, tokens_per_minute=6000, now=0.0)
    max_rps, max_tpm = 10.0, 6000.0
    ledger = _Ledger()
    now = 0.0
    for step, (op, arg) in ops:
        now += step
        if op == "acquire":
            tokens = cast(int, arg)
            if limiter.try_acquire(tokens, now) == 0.0:
                ledger.events.append((now, 1, float(tokens), True))
                ledger.open.append(tokens)
        elif op == "settle" and ledger.open:
            reserved = ledger.open.pop(0)
            used = round(reserved * cast(float, arg))
            limiter.settle(reserved, used, now)
            ledger.events.append((now, 0, float(used - reserved), False))
        elif op == "refund" and ledger.open:
            reserved = ledger.open.pop()
            limiter.refund(reserved, now)
            ledger.events.append((now, -1, -float(reserved), False))
        elif op == "resize":
            rps, tpm = cast(tuple[float, float], arg)
            limiter.set_limits(requests_per_second=rps, tokens_per_minute=tpm, now=now, reason="t")
            max_rps, max_tpm = max(max_rps, rps), max(max_tpm, tpm)
        elif op == "headers":
            requests_left, tokens_left = cast(tuple[int, int], arg)
            limiter.observe_headers(
                RateLimitHeaders(
                    requests_remaining=requests_left,
                    tokens_remaining=tokens_left,
                    requests_reset=0.5,
                    tokens_reset=0.5,
                ),
                now,
            )
        elif op == "pause":
            limiter.pause_until(now + cast(float, arg), now, "429")
    _assert_windows(ledger.events, max_rps, max(1.0, max_rps), max_tpm / 60.0, max_tpm)


def _assert_windows(
    events: list[tuple[float, int, float, bool]],
    rps: float,
    request_burst: float,
    tokens_per_second: float,
    token_burst: float,
) -> None:
    for end, (end_time, _, _, admission) in enumerate(events):
        if not admission:
            continue
        requests = tokens = 0.0
        for start in range(end, -1, -1):
            start_time, request_delta, token_delta, _ = events[start]
            requests += request_delta
            tokens += token_delta
            window = end_time - start_time
            slack = 1e-6 * (end - start + 1)
            assert requests <= rps * window + request_burst + slack, (start, end)
            assert tokens <= tokens_per_second * window + token_burst + slack * token_burst, (
                start,
                end,
            )
