"""Property test of the local limiter: it never admits more than the rate in force over each
interval plus the burst in force when the interval began, whatever is resized, settled,
refunded, synced or paused in between."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from hypothesis import example, given, settings
from hypothesis import strategies as st

from grok_scheduler import LocalLimiter, RateLimitHeaders

acquire = st.tuples(st.just("acquire"), st.integers(min_value=0, max_value=500))


# Many callers at one instant: the limiter, not the spacing of the steps, must be what holds
# the rate (single acquisitions at up to 0.3 s apart never press a limit above a few per second).
burst = st.tuples(
    st.just("burst"),
    st.tuples(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=500)),
)


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
        st.one_of(acquire, acquire, acquire, burst, settle, refund, resize, headers_op, pause),
    ),
    min_size=1,
    max_size=250,
)


@dataclass(frozen=True)
class _Event:
    """Net credit charged at one moment, with the limits that bound it."""

    time: float
    requests: int
    tokens: float
    admitted_tokens: int | None  # the tokens reserved, when this event is an admission
    # Credit the limits let refill from time 0 to ``time`` (rate integrated over the resizes).
    request_credit: float
    token_credit: float
    # The most credit the buckets could hold just before this event: a burst's worth of the
    # limits then in force.
    request_burst: float
    token_burst: float


@dataclass
class _Ledger:
    """What the limiter charged, and the limits the test set, as time goes on."""

    rps: float
    tpm: float
    now: float = 0.0
    request_credit: float = 0.0
    token_credit: float = 0.0
    events: list[_Event] = field(default_factory=list)
    open: list[int] = field(default_factory=list)  # reservations not yet settled or refunded

    def advance(self, step: float) -> None:
        self.now += step
        self.request_credit += self.rps * step
        self.token_credit += self.tpm / 60.0 * step

    def charge(self, requests: int, tokens: float, admitted_tokens: int | None = None) -> None:
        self.events.append(
            _Event(
                self.now,
                requests,
                tokens,
                admitted_tokens,
                self.request_credit,
                self.token_credit,
                max(1.0, self.rps),
                self.tpm,
            )
        )


@settings(max_examples=200, deadline=None)
@given(limiter_ops)
# A cut, then a crowd: always tried, so a limiter that keeps the old rate fails on every run.
@example([(0.0, ("resize", (1.0, 600.0))), (0.3, ("burst", (40, 10))), (0.3, ("burst", (40, 10)))])
def test_limiter_never_admits_more_than_the_rate_in_force_times_window_plus_burst(
    ops: list[tuple[float, tuple[str, object]]],
) -> None:
    """For requests and tokens, under any mix of acquisitions, settlements, refunds, resizes,
    header syncs and pauses: net credit charged in a window ending at an admission is at most
    the credit the limits in force refilled over that window plus the burst in force at its
    start. A limiter that keeps admitting at the old rate after a cut fails this."""
    limiter = LocalLimiter(requests_per_second=10, tokens_per_minute=6000, now=0.0)
    ledger = _Ledger(rps=10.0, tpm=6000.0)
    for step, (op, arg) in ops:
        ledger.advance(step)
        now = ledger.now
        if op in ("acquire", "burst"):
            count, tokens = cast(tuple[int, int], arg) if op == "burst" else (1, cast(int, arg))
            for _ in range(count):
                if limiter.try_acquire(tokens, now) == 0.0:
                    ledger.charge(1, float(tokens), admitted_tokens=tokens)
                    ledger.open.append(tokens)
        elif op == "settle" and ledger.open:
            reserved = ledger.open.pop(0)
            used = round(reserved * cast(float, arg))
            before = _tokens_left(limiter, now)
            limiter.settle(reserved, used, now)
            after = _tokens_left(limiter, now)
            if used > reserved:
                # Usage above the reservation is charged in full, except what would take the
                # bucket past one bucket of debt (forgiven by design: _bucket.py).
                assert before - after >= used - reserved - 1e-6 or after < 0.0
                ledger.charge(0, before - after)
            else:
                ledger.charge(0, float(used - reserved))
        elif op == "refund" and ledger.open:
            reserved = ledger.open.pop()
            limiter.refund(reserved, now)
            ledger.charge(-1, -float(reserved))
        elif op == "resize":
            rps, tpm = cast(tuple[float, float], arg)
            limiter.set_limits(requests_per_second=rps, tokens_per_minute=tpm, now=now, reason="t")
            ledger.rps, ledger.tpm = rps, tpm
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
    _assert_windows(ledger.events)


def _tokens_left(limiter: LocalLimiter, now: float) -> float:
    left = limiter.state(now).tokens_available
    assert left is not None
    return left


def _assert_windows(events: list[_Event]) -> None:
    for end, last in enumerate(events):
        if last.admitted_tokens is None:
            continue
        # A reservation of no tokens asks no token credit: only requests bound it.
        check_tokens = last.admitted_tokens > 0
        requests = tokens = 0.0
        for start in range(end, -1, -1):
            first = events[start]
            requests += first.requests
            tokens += first.tokens
            slack = 1e-6 * (end - start + 1)
            refilled = last.request_credit - first.request_credit
            assert requests <= refilled + first.request_burst + slack, (start, end)
            if check_tokens:
                refilled = last.token_credit - first.token_credit
                assert tokens <= refilled + first.token_burst + slack * first.token_burst, (
                    start,
                    end,
                )
