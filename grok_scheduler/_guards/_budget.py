"""A budget guard: refuse to send a job that would take a run past its token or cost budget.

Like the limiter, the budget is reserved before a job is sent and corrected afterwards::

    reserve(estimate)                       before sending (raises BudgetExceededError)
    settle(estimate, usage.total_tokens, usage.cost_in_usd_ticks)   after an answer
    release(estimate)                       the job never reached the server

Cost is known only after the fact, so the cost check projects from the average cost per token
seen so far: ``cost so far + (reserved + estimate) * average > max_cost_usd`` refuses the job.
Until the first answer reports a cost there is no average, so jobs sent concurrently at the very
start can pass the cost budget by at most that first batch.
"""

from __future__ import annotations

import math

from .._errors import BudgetExceededError
from .._models import USD_TICKS_PER_USD

__all__ = ["Budget"]


class Budget:
    """A maximum of tokens and/or US dollars for one scheduler or one run (None: unlimited)."""

    __slots__ = (
        "_cost_ticks",
        "_costed_tokens",
        "_max_cost_ticks",
        "_max_cost_usd",
        "_max_tokens",
        "_reserved",
        "_used",
    )

    def __init__(self, *, max_tokens: int | None = None, max_cost_usd: float | None = None) -> None:
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
        if max_cost_usd is not None and not (
            isinstance(max_cost_usd, int | float)
            and not isinstance(max_cost_usd, bool)
            and max_cost_usd > 0
            and math.isfinite(max_cost_usd)
        ):
            raise ValueError(
                f"max_cost_usd must be a positive number or None, got {max_cost_usd!r}"
            )
        self._max_tokens = max_tokens
        self._max_cost_usd = max_cost_usd
        # Integer ticks, as the server reports them, so sums never drift.
        self._max_cost_ticks = (
            round(max_cost_usd * USD_TICKS_PER_USD) if max_cost_usd is not None else None
        )
        self._used = 0
        self._reserved = 0
        self._cost_ticks = 0
        self._costed_tokens = 0  # tokens of the answers that reported a cost

    @property
    def max_tokens(self) -> int | None:
        """The token budget (None: unlimited)."""
        return self._max_tokens

    @property
    def max_cost_usd(self) -> float | None:
        """The cost budget in US dollars (None: unlimited)."""
        return self._max_cost_usd

    @property
    def used_tokens(self) -> int:
        """Tokens settled so far (``usage.total_tokens`` of every answer)."""
        return self._used

    @property
    def reserved_tokens(self) -> int:
        """Tokens reserved by jobs in flight."""
        return self._reserved

    @property
    def cost_usd(self) -> float:
        """Cost settled so far in US dollars."""
        return self._cost_ticks / USD_TICKS_PER_USD

    @property
    def used_fraction(self) -> float:
        """The larger of tokens used / max_tokens and cost / max_cost_usd (0.0 with no limits)."""
        fraction = 0.0
        if self._max_tokens is not None:
            fraction = self._used / self._max_tokens
        if self._max_cost_ticks is not None:
            fraction = max(fraction, self._cost_ticks / self._max_cost_ticks)
        return fraction

    def reserve(self, estimated_tokens: int) -> None:
        """Reserve ``estimated_tokens`` for a job, or raise :class:`BudgetExceededError`."""
        if estimated_tokens < 0:
            raise ValueError(f"estimated_tokens must be >= 0, got {estimated_tokens!r}")
        committed = self._used + self._reserved
        if self._max_tokens is not None and committed + estimated_tokens > self._max_tokens:
            raise BudgetExceededError(
                f"this job needs about {estimated_tokens} tokens but only "
                f"{max(0, self._max_tokens - committed)} of the {self._max_tokens}-token budget "
                f"remain ({self._used} used, {self._reserved} reserved by jobs in flight)"
            )
        if self._max_cost_ticks is not None:
            projected = self._projected_cost_ticks(self._reserved + estimated_tokens)
            if projected > self._max_cost_ticks:
                raise BudgetExceededError(
                    f"this job would take the cost to about ${projected / USD_TICKS_PER_USD:.4f}, "
                    f"past the ${self._max_cost_usd:g} budget "
                    f"(${self.cost_usd:.4f} spent so far)"
                )
        self._reserved += estimated_tokens

    def settle(
        self, reserved_tokens: int, usage_total_tokens: int, cost_in_usd_ticks: int | None
    ) -> None:
        """Replace a reservation with what the answer really used (and cost, if reported)."""
        self._reserved = max(0, self._reserved - reserved_tokens)
        self._used += usage_total_tokens
        if cost_in_usd_ticks is not None:
            self._cost_ticks += cost_in_usd_ticks
            self._costed_tokens += usage_total_tokens

    def release(self, reserved_tokens: int) -> None:
        """Give a reservation back: the job failed or was cancelled before using anything."""
        self._reserved = max(0, self._reserved - reserved_tokens)

    def _projected_cost_ticks(self, more_tokens: int) -> float:
        if self._costed_tokens == 0:
            return float(self._cost_ticks)
        return self._cost_ticks + more_tokens * self._cost_ticks / self._costed_tokens

    def __repr__(self) -> str:
        return (
            f"Budget(max_tokens={self._max_tokens}, max_cost_usd={self._max_cost_usd}, "
            f"used_tokens={self._used}, reserved_tokens={self._reserved}, "
            f"cost_usd={self.cost_usd:.4f})"
        )
