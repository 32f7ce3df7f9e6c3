"""One lane per model: the queue, credit, learning and calls in flight that a model's jobs share.

xAI limits each team per model, so each model gets its own limiter, rate controller, token
estimator, timeout model and in-flight bound, created when its first job arrives. A job waits
only for its own model's credit: a slow model's 429s never throttle a fast one, and a fast
model's rate never floods a slow one.

Limits may be given as one number (every model) or a mapping per model (a model not in it is
discovered). A limiter given by the caller serves the scheduler's default model; a callable
``model -> Limiter`` (what ``--redis-url`` passes) builds one for every model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeAlias

from .._errors import ModelNotAvailableError
from .._guards._estimate import TokenEstimator
from .._guards._timeouts import CallTimeouts
from .._limits._adaptive import AdaptivePolicy, RateController
from .._limits._base import FleetLog, Limiter, RateLimitHeaders
from .._limits._concurrency import ConcurrencyLimit
from .._limits._local import LocalLimiter
from .._limits._ramp import FirstContactRamp
from .._observe._stats import ModelStatistics
from .._wire._limit_bodies import LimitUnit, StatedLimits
from ._queue import JobQueue

__all__ = ["Lane", "Lanes", "LimiterSource", "PerModel", "lane_refusal", "limit_for"]

#: One figure for every model, or one per model (a model left out is discovered).
PerModel: TypeAlias = float | Mapping[str, float] | None
#: A limiter for the default model, or a factory of one limiter per model.
LimiterSource: TypeAlias = "Limiter | Callable[[str], Limiter] | None"


def lane_refusal(error: ModelNotAvailableError) -> ModelNotAvailableError:
    """A fresh error for a job of a model the team may not use (one per job)."""
    return ModelNotAvailableError(
        f"not sent: {error.message}",
        status_code=error.status_code,
        code=error.code,
        request_id=error.request_id,
    )


def _stated(stated: StatedLimits, unit: LimitUnit, window: float) -> float | None:
    """A stated limit of ``unit`` per ``window``, as a figure per that window."""
    found = stated.limit_for(unit, window)
    return None if found is None or found.limit <= 0 else found.limit


def limit_for(value: PerModel, model: str) -> float | None:
    """The configured figure for ``model``."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    figure = value.get(model)
    return None if figure is None else float(figure)


class Lane:
    """Everything one model's calls share."""

    __slots__ = (
        "concurrency",
        "controller",
        "estimator",
        "in_flight",
        "limiter",
        "limiter_failures",
        "model",
        "queue",
        "ramp",
        "timeouts",
        "unavailable",
    )

    def __init__(
        self,
        model: str,
        *,
        limiter: Limiter,
        controller: RateController,
        concurrency: ConcurrencyLimit,
        queue: JobQueue,
        ramp: FirstContactRamp | None = None,
    ) -> None:
        self.model = model
        self.limiter = limiter
        self.controller = controller
        self.concurrency = concurrency
        self.queue = queue
        # Paces the lane while nothing is known of its limits (None: something is known).
        self.ramp = ramp
        self.estimator = TokenEstimator()
        self.timeouts = CallTimeouts()
        self.in_flight = 0
        self.limiter_failures = 0  # the limiter's exceptions in a row at the gate
        # Set once the server said the team may not use this model: later jobs fail at once.
        self.unavailable: ModelNotAvailableError | None = None

    def apply_stated(self, stated: StatedLimits, now: float) -> None:
        """xAI's 429 body states this model's limits exactly: run at them from now on."""
        self.controller.on_stated(
            requests_per_second=_stated(stated, "requests", 1.0),
            requests_per_minute=_stated(stated, "requests", 60.0),
            tokens_per_minute=_stated(stated, "tokens", 60.0),
            now=now,
            reason="429 body",
        )

    def ramp_wait(self, now: float) -> float:
        """Seconds until the first-contact ramp lets this lane's next call go (0.0: now).

        The ramp retires for good once the limiter has a rate (configured, stated or
        estimated from the first 429s); a 429 that left the rate unknown halves it.
        """
        ramp = self.ramp
        if ramp is None:
            return 0.0
        limiter = self.limiter
        if limiter.requests_per_second is not None or limiter.tokens_per_minute is not None:
            self.ramp = None
            return 0.0
        ramp.on_rate_limited(self.controller.last_rate_limited)
        ramp.pace_by_taken(now)
        return ramp.delay(now)

    def statistics(self, now: float) -> ModelStatistics:
        """This model's part of ``Scheduler.statistics()``."""
        return ModelStatistics(
            model=self.model,
            limiter=self.limiter.state(now),
            in_flight=self.in_flight,
            concurrency_limit=self.concurrency_limit(),
            queued=len(self.queue),
            slow_latency=self.concurrency.slow_latency,
        )

    def concurrency_limit(self) -> int:
        """Calls of this model that may be in flight now (Little's law on the learned rate)."""
        rate = self.limiter.requests_per_second
        if rate is None and self.ramp is not None:
            # The ramp paces a blind lane: its bound may follow the ramp's rate, not double
            # once per slow round trip (32 to 1,024 took five seconds at 1 s answers).
            concurrency = self.concurrency
            return max(concurrency.limit(None), concurrency.limit(self.ramp.latest_rate))
        return self.concurrency.limit(rate)

    def __repr__(self) -> str:
        return (
            f"Lane(model={self.model!r}, in_flight={self.in_flight}, queued={len(self.queue)}, "
            f"requests_per_second={self.limiter.requests_per_second}, "
            f"tokens_per_minute={self.limiter.tokens_per_minute})"
        )


class Lanes:
    """The lanes of one scheduler, by model, created on first use."""

    __slots__ = (
        "_adaptive",
        "_burst_seconds",
        "_by_model",
        "_cap",
        "_clock_now",
        "_default_model",
        "_factory",
        "_given",
        "_listener",
        "_make_queue",
        "_max_concurrency",
        "_requests_per_second",
        "_tokens_per_minute",
    )

    def __init__(
        self,
        *,
        default_model: str,
        requests_per_second: PerModel,
        tokens_per_minute: PerModel,
        burst_seconds: float,
        adaptive: AdaptivePolicy,
        limiter: LimiterSource,
        max_concurrency: int | None,
        concurrency_cap: int,
        make_queue: Callable[[], JobQueue],
        now: Callable[[], float],
        listener: Callable[[], None],
    ) -> None:
        self._default_model = default_model
        self._requests_per_second = requests_per_second
        self._tokens_per_minute = tokens_per_minute
        self._burst_seconds = burst_seconds
        self._adaptive = adaptive
        self._given: Limiter | None = None
        self._factory: Callable[[str], Limiter] | None = None
        if callable(limiter):
            self._factory = limiter
        elif limiter is not None:
            self._given = limiter
        self._max_concurrency = max_concurrency
        self._cap = concurrency_cap
        self._make_queue = make_queue
        self._clock_now = now
        self._listener = listener
        self._by_model: dict[str, Lane] = {}

    def __repr__(self) -> str:
        return f"Lanes(models={list(self._by_model)})"

    def __iter__(self) -> Iterator[Lane]:
        return iter(self._by_model.values())

    def __len__(self) -> int:
        return len(self._by_model)

    def get(self, model: str) -> Lane:
        """The lane of ``model``, created on first use."""
        lane = self._by_model.get(model)
        if lane is None:
            lane = self._by_model[model] = self._create(model)
        return lane

    def existing(self, model: str) -> Lane | None:
        """The lane of ``model`` if one was created."""
        return self._by_model.get(model)

    @property
    def default(self) -> Lane:
        """The lane of the scheduler's default model."""
        return self.get(self._default_model)

    def probe(self, model: str) -> tuple[int, float | None, float | None]:
        """A model's calls in flight and current limits (what the run's time series samples)."""
        lane = self._by_model.get(model)
        if lane is None:
            return 0, None, None
        return lane.in_flight, lane.limiter.requests_per_second, lane.limiter.tokens_per_minute

    def queued(self) -> int:
        """Jobs waiting in every lane."""
        return sum(len(lane.queue) for lane in self._by_model.values())

    def waiting(self) -> Iterator[tuple[int, float]]:
        """(priority, submitted at) of every queued job of every lane."""
        for lane in self._by_model.values():
            for job in lane.queue.jobs():
                yield job.priority, job.submitted_at

    def next_eligible_at(self) -> float | None:
        """The earliest time a delayed job of any lane becomes eligible."""
        times = [t for lane in self._by_model.values() if (t := lane.queue.next_eligible_at())]
        return min(times) if times else None

    def open_with_half_a_burst(self, now: float) -> None:
        """The first answer (or its wait) opens the pool: start from half a burst, not a full one.

        Buckets refill while the pool waits for the server's first answer, which can take
        seconds; a full burst at a limit configured too high would then meet a wall of 429s.
        Limiters shared with other processes are left alone (others have been heard). A lane
        that knows nothing of its limits starts its first-contact ramp instead.
        """
        for lane in self._by_model.values():
            lane.controller.on_opened(now)
            if lane.ramp is not None:
                lane.ramp.restart(now)  # a blind lane's ramp starts when the pool opens
            rps = lane.limiter.requests_per_second
            if rps is None or not getattr(lane.limiter, "measures_acceptance", False):
                continue
            half = max(1.0, rps * self._burst_seconds * 0.45)
            lane.limiter.observe_headers(RateLimitHeaders(requests_remaining=half), now)

    def _create(self, model: str) -> Lane:
        now = self._clock_now()
        rps = limit_for(self._requests_per_second, model)
        tpm = limit_for(self._tokens_per_minute, model)
        if self._factory is not None:
            limiter = self._factory(model)
        elif self._given is not None and model == self._default_model:
            limiter = self._given
        else:
            limiter = LocalLimiter(
                requests_per_second=rps,
                tokens_per_minute=tpm,
                burst_seconds=self._burst_seconds,
                now=now,
            )
        limiter.set_listener(self._listener)
        fleet = limiter if isinstance(limiter, FleetLog) else None
        controller = RateController(
            self._adaptive,
            limiter,
            # A shared limiter may already know the fleet's limits.
            requests_per_second=limiter.requests_per_second,
            tokens_per_minute=limiter.tokens_per_minute,
            now=now,
            fleet=fleet,
            shared=not getattr(limiter, "measures_acceptance", False),
        )
        concurrency = ConcurrencyLimit(fixed=self._max_concurrency, cap=self._cap)
        ramp = None
        if (
            self._adaptive.enabled
            and limiter.requests_per_second is None
            and limiter.tokens_per_minute is None
            and getattr(limiter, "measures_acceptance", False)
        ):
            # Nothing known of this model's limits: its first calls ramp up instead of leaving
            # as a pool at once. A shared limiter is left alone (its fleet discovers together).
            ramp = FirstContactRamp(now=now)
        return Lane(
            model,
            limiter=limiter,
            controller=controller,
            concurrency=concurrency,
            queue=self._make_queue(),
            ramp=ramp,
        )
