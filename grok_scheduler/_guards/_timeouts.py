"""Per-call timeouts for non-streamed calls, learned from the calls this model completed.

A non-streamed call shows nothing until its whole answer is in, so a hung call can only be told
from a long answer by its duration. The bound is

    slack * (slow call + seconds per token * tokens beyond the longest answer seen) + floor

where *slow call* is a high percentile of the observed durations (whole calls, answers of the
sizes seen included) and *seconds per token* the median duration per answer token, so only the
part of ``max_tokens`` that no observed answer covered is extrapolated. The result is clamped to
``[minimum, maximum]``; before enough calls were seen a generous prior holds.

The rule it replaces (fastest call plus the slowest seconds per token times ``max_tokens``)
scaled the base latency of short answers by the whole ``max_tokens``: with 4-second calls of
sixteen tokens it came to about 130 s, so hung calls lived two minutes. This one follows the
latency instead: at 50 ms calls it cuts a hang within ``minimum``, at 60 s calls it waits a few
times the slowest call seen, and an answer longer than any seen still gets time per extra token.

Two rules keep a long answer from being cut and bought again. A call without ``max_tokens`` may
answer up to the model's context, so it is bounded as if allowed that many tokens (in practice
the maximum): the largest answer observed so far would be no bound at all, because an answer
longer than the timeout is cut and never observed, so a bound learned from the survivors could
never grow. And a timeout that fired is not repeated unchanged: each timed-out attempt of a job
doubles the next one's bound, up to the maximum. A streamed call is watched by its silences
instead (:mod:`._watchdog`), which needs no guess at the answer's length.
"""

from __future__ import annotations

from collections import deque

__all__ = ["UNBOUNDED_ANSWER_TOKENS", "CallTimeouts"]

_WINDOW = 64
_MIN_SAMPLES = 8
_REFRESH = 8
_QUANTILE = 0.99
# What a call without max_tokens may generate: the smallest context window of the Grok models
# (131,072 tokens), since the server stops an answer only there.
UNBOUNDED_ANSWER_TOKENS = 131_072


def _quantile(samples: deque[float] | deque[int], q: float) -> float:
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class CallTimeouts:
    """Learns call latency and proposes a timeout for the next non-streamed call."""

    __slots__ = (
        "_cached",
        "_durations",
        "_floor",
        "_maximum",
        "_minimum",
        "_observed",
        "_per_token",
        "_prior_base",
        "_prior_per_token",
        "_sizes",
        "_slack",
    )

    def __init__(
        self,
        *,
        minimum: float = 10.0,
        maximum: float = 900.0,
        slack: float = 3.0,
        floor: float = 1.0,
        prior_base: float = 30.0,
        prior_per_token: float = 0.1,
    ) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._slack = slack
        self._floor = floor
        self._prior_base = prior_base
        self._prior_per_token = prior_per_token
        self._durations: deque[float] = deque(maxlen=_WINDOW)
        self._sizes: deque[int] = deque(maxlen=_WINDOW)
        self._per_token: deque[float] = deque(maxlen=_WINDOW)
        # (slow call, longest answer, median seconds per token), refreshed every few
        # observations: sorting the window on every call would cost more than it is worth.
        self._cached: tuple[float, float, float] | None = None
        self._observed = 0

    def observe(self, seconds: float, answer_tokens: int) -> None:
        """Record one successful call's duration and answer size (completion + reasoning)."""
        if seconds < 0:
            return
        self._durations.append(seconds)
        self._sizes.append(max(0, answer_tokens))
        if answer_tokens > 0:
            self._per_token.append(seconds / answer_tokens)
        self._observed += 1
        if self._observed % _REFRESH == 0 or self._observed <= _MIN_SAMPLES:
            self._cached = None

    def timeout_for(self, max_tokens: int | None, *, timed_out: int = 0) -> float:
        """The bound for a call allowed ``max_tokens`` answer tokens (None: the model's context).

        ``timed_out`` counts the job's earlier attempts that hit their timeout: each one doubles
        the bound (up to the maximum), so a call that needs longer than predicted gets it.
        """
        tokens = max_tokens if max_tokens is not None else UNBOUNDED_ANSWER_TOKENS
        if len(self._durations) < _MIN_SAMPLES:
            estimate = self._prior_base + self._prior_per_token * tokens
        else:
            slow, longest, per_token = self._learned()
            estimate = slow + per_token * max(0.0, tokens - longest)
        bound = self._slack * estimate + self._floor
        # The exponent is capped: past a few doublings any bound is beyond the maximum anyway.
        bound *= 2.0 ** min(max(timed_out, 0), 32)
        return max(self._minimum, min(self._maximum, bound))

    def _learned(self) -> tuple[float, float, float]:
        if self._cached is None:
            # The median, not the slowest: seconds per token of a short answer are mostly its
            # base latency, and the slowest of those times max_tokens was the old 130 s bound.
            per_token = _quantile(self._per_token, 0.5) if self._per_token else 0.0
            self._cached = (
                _quantile(self._durations, _QUANTILE),
                float(max(self._sizes)),
                per_token,
            )
        return self._cached

    def __repr__(self) -> str:
        return (
            f"CallTimeouts(samples={len(self._durations)}, next_1024={self.timeout_for(1024):.1f}s)"
        )
