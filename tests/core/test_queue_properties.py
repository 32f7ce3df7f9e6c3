"""Property test of the job queue: it always serves the most urgent eligible job, FIFO among
equals, against a sorted-list model."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler._core._queue import JobQueue

if TYPE_CHECKING:
    from grok_scheduler._core._job import Job


class _StubJob:
    """The fields JobQueue reads and writes."""

    __slots__ = (
        "cancelled",
        "eligible_at",
        "key",
        "name",
        "priority",
        "queue_order",
        "queued",
        "submitted",
    )

    def __init__(self, name: int, priority: int, key: float, submitted: int) -> None:
        self.name = name
        self.priority = priority
        self.key = key
        self.submitted = submitted
        self.eligible_at: float = float(submitted)
        self.cancelled = False
        self.queued = False
        self.queue_order: int | None = None


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
    FIFO (by first queueing: a retry keeps its place) among equals; delayed retries wait;
    cancelled jobs never come out."""
    queue = JobQueue(aging_seconds=aging)
    now = 0  # whole seconds: the queue's float keys and the model's fractions agree exactly
    live: dict[int, tuple[_StubJob, int]] = {}  # name -> (job, sequence of its first push)
    sequence = 0
    names = 0
    served: tuple[_StubJob, int] | None = None
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
            job, first = served
            job.eligible_at = float(now + arg)
            queue.push(cast("Job", job), float(now))
            live[job.name] = (job, first)
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
                served = live.pop(cast(_StubJob, got).name)
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


def test_a_retry_goes_back_to_its_first_place_not_behind_the_backlog() -> None:
    """A bulk run submits every job at one instant, so all share one key: a retried job must
    come out ahead of the jobs queued after it, whether it waited out a backoff or not."""
    for aging in (None, 60):
        queue = JobQueue(aging_seconds=aging)
        jobs = [_StubJob(name, 2, queue.key_for(2, 0.0), 0) for name in range(4)]
        for job in jobs:
            queue.push(cast("Job", job), 0.0)
        first = queue.pop(0.0)
        assert first is jobs[0]
        jobs[0].eligible_at = 0.5  # its backoff
        queue.push(first, 0.0)
        assert queue.pop(0.0) is jobs[1]  # the backoff holds it back meanwhile
        assert queue.pop(1.0) is jobs[0]  # then it goes before jobs 2 and 3
        assert [queue.pop(1.0), queue.pop(1.0)] == [jobs[2], jobs[3]]
