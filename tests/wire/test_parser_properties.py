"""Property tests: header parsers never raise, the limiter never over-admits, the queue's order."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from grok_scheduler import LocalLimiter, RateLimitHeaders
from grok_scheduler._core._queue import JobQueue
from grok_scheduler._wire._classify import classify_response
from grok_scheduler._wire._headers import (
    parse_go_duration,
    parse_rate_limit_headers,
    parse_retry_after,
    parse_should_retry,
)

if TYPE_CHECKING:
    from grok_scheduler._core._job import Job

# --------------------------------------------------------------------------- header parsers

HEADER_NAMES = [
    "retry-after",
    "Retry-After",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "X-RateLimit-Reset-Tokens",
    "RateLimit-Policy",
    "RateLimit",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "content-type",
]

# aiohttp hands header values over as str decoded from the raw bytes; any byte may arrive.
raw_values = st.binary(max_size=64).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
plausible_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.from_regex(r"-?[0-9.]{0,12}(ns|us|ms|s|m|h){0,3}[0-9.]{0,6}(ms|s|m)?", fullmatch=True),
    st.from_regex(
        r'("[a-z]{0,8}"|[a-z]{1,8})(;[a-z]{1,2}=-?[0-9"a-z.]{0,10}){0,4}', fullmatch=True
    ),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "true", "false", "", " ", "1e309", "NaN"]),
)
values = st.one_of(raw_values, plausible_values, st.text(max_size=40))
header_lists = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), values), max_size=12)


def _finite_or_none(value: float | None, *, positive: bool = False) -> bool:
    if value is None:
        return True
    return math.isfinite(value) and (value > 0 if positive else value >= 0)


@settings(max_examples=400, deadline=None)
@given(header_lists, st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)))
def test_rate_limit_header_parsers_never_raise_and_return_sane_numbers(
    pairs: list[tuple[str, str]], now_wall: float | None
) -> None:
    """Whatever bytes arrive, parsing returns None or finite non-negative numbers, never raises."""
    headers = CIMultiDict(pairs)
    parsed = parse_rate_limit_headers(headers, now_wall=now_wall)
    assert isinstance(parsed, RateLimitHeaders)
    for name in ("requests_limit", "tokens_limit", "requests_window", "tokens_window"):
        assert _finite_or_none(getattr(parsed, name), positive=True), name
    for name in (
        "requests_remaining",
        "tokens_remaining",
        "requests_reset",
        "tokens_reset",
        "retry_after",
    ):
        assert _finite_or_none(getattr(parsed, name)), name
    for rate in (parsed.requests_per_second, parsed.tokens_per_minute):
        assert _finite_or_none(rate, positive=True)
    assert _finite_or_none(parse_retry_after(headers, now_wall=now_wall))
    assert parse_should_retry(headers) in (None, True, False)


@settings(max_examples=300, deadline=None)
@given(values)
def test_go_duration_parser_never_raises(text: str) -> None:
    """A Go duration parses to a finite non-negative number of seconds or None."""
    assert _finite_or_none(parse_go_duration(text))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=300),
    header_lists,
)
def test_classification_of_any_response_never_raises(
    status: int, body: bytes, pairs: list[tuple[str, str]]
) -> None:
    """Any status, body bytes and headers classify to a typed error with a finite wait or None."""
    verdict = classify_response(status, CIMultiDict(pairs), body, request_id=None)
    assert verdict.error.status_code == status
    assert _finite_or_none(verdict.retry_after)
    assert isinstance(verdict.retryable, bool)


# --------------------------------------------------------------------------- the limiter

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


# --------------------------------------------------------------------------- the queue


class _StubJob:
    """The fields JobQueue reads and writes."""

    __slots__ = ("cancelled", "eligible_at", "key", "name", "priority", "queued", "submitted")

    def __init__(self, name: int, priority: int, key: float, submitted: int) -> None:
        self.name = name
        self.priority = priority
        self.key = key
        self.submitted = submitted
        self.eligible_at: float = float(submitted)
        self.cancelled = False
        self.queued = False


queue_ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(min_value=-2, max_value=5)),
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("serve"), st.just(0)),
        st.tuples(st.just("retry"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(queue_ops, st.sampled_from([None, 4, 10, 60]))
def test_queue_always_serves_the_most_urgent_eligible_job(
    ops: list[tuple[str, int]], aging: int | None
) -> None:
    """Against a sorted-list model: served = the eligible job of least priority - waited/aging,
    FIFO (by time of queueing) among equals; delayed retries wait; cancelled jobs never come out."""
    queue = JobQueue(aging_seconds=aging)
    now = 0  # whole seconds: the queue's float keys and the model's fractions agree exactly
    live: dict[int, tuple[_StubJob, int]] = {}  # name -> (job, sequence of its latest push)
    sequence = 0
    names = 0
    served: _StubJob | None = None
    for op, arg in ops:
        if op == "submit":
            names += 1
            job = _StubJob(names, arg, queue.key_for(arg, float(now)), now)
            queue.push(cast("Job", job), float(now))
            live[job.name] = (job, sequence)
            sequence += 1
        elif op == "advance":
            now += arg
        elif op == "retry" and served is not None:
            served.eligible_at = float(now + arg)
            queue.push(cast("Job", served), float(now))
            live[served.name] = (served, sequence)
            sequence += 1
            served = None
        elif op == "cancel" and live:
            name = sorted(live)[arg % len(live)]
            job, _ = live.pop(name)
            job.cancelled = True
            queue.discard(cast("Job", job))
        elif op == "serve":
            expected = _most_urgent(live, now, aging)
            got = queue.peek(float(now))
            assert (got and cast(_StubJob, got).name) == (expected and expected.name)
            if got is not None:
                assert queue.pop(float(now)) is got
                served = live.pop(cast(_StubJob, got).name)[0]
        assert len(queue) == len(live)


def _most_urgent(
    live: dict[int, tuple[_StubJob, int]], now: int, aging: int | None
) -> _StubJob | None:
    eligible = [(job, seq) for job, seq in live.values() if job.eligible_at <= now]
    if not eligible:
        return None

    def urgency(entry: tuple[_StubJob, int]) -> tuple[Fraction, int]:
        job, seq = entry
        if aging is None:
            return Fraction(job.priority), seq
        # One level more urgent per aging period waited since submission.
        return Fraction(job.priority) - Fraction(now - job.submitted, aging), seq

    return min(eligible, key=urgency)[0]
