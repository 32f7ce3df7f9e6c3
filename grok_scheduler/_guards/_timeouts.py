"""Per-call timeouts derived from ``max_tokens`` and the latency observed so far.

A stuck connection must not hold a job for minutes, yet a long answer must not be cut off. The
bound is ``slack * (base latency + seconds per token * max_tokens) + floor``, where base latency
and seconds per token are the largest of recent observations (so a slow phase widens the bound
at once), clamped to ``[minimum, maximum]``. Before enough calls were seen a generous prior holds.

Two rules keep a long answer from being cut and bought again. A call without ``max_tokens`` may
answer up to the model's context, so it is bounded as if allowed that many tokens (in practice
the maximum), not as if it had a small default: the largest answer observed so far would be no
bound at all, because an answer longer than the timeout is cut and never observed, so a bound
learned from the survivors could never grow. And a timeout that fired is not repeated
unchanged: each timed-out attempt of a job doubles the next one's bound, up to the maximum.
"""

from __future__ import annotations

from collections import deque

__all__ = ["UNBOUNDED_ANSWER_TOKENS", "CallTimeouts"]

_WINDOW = 64
_MIN_SAMPLES = 8
_REFRESH = 8
# What a call without max_tokens may generate: the smallest context window of the Grok models
# (131,072 tokens), since the server stops an answer only there.
UNBOUNDED_ANSWER_TOKENS = 131_072


class CallTimeouts:
    """Learns call latency and proposes a timeout for the next call."""

    __slots__ = (
        "_base",
        "_cached",
        "_floor",
        "_maximum",
        "_minimum",
        "_observed",
        "_per_token",
        "_prior_base",
        "_prior_per_token",
        "_slack",
    )

    def __init__(
        self,
        *,
        minimum: float = 10.0,
        maximum: float = 900.0,
        slack: float = 3.0,
        floor: float = 5.0,
        prior_base: float = 30.0,
        prior_per_token: float = 0.1,
    ) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._slack = slack
        self._floor = floor
        self._prior_base = prior_base
        self._prior_per_token = prior_per_token
        self._base: deque[float] = deque(maxlen=_WINDOW)
        self._per_token: deque[float] = deque(maxlen=_WINDOW)
        # (fastest call, slowest seconds per token), refreshed every few observations: a scan
        # of the window on every call would cost more than the timeout is worth.
        self._cached: tuple[float, float] | None = None
        self._observed = 0

    def observe(self, seconds: float, answer_tokens: int) -> None:
        """Record one successful call's duration and answer size (completion + reasoning)."""
        if seconds < 0:
            return
        self._base.append(seconds)
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
        if len(self._base) < _MIN_SAMPLES:
            estimate = self._prior_base + self._prior_per_token * tokens
        else:
            if self._cached is None:
                # Latency already includes the tokens of the observed answers, so the base is
                # the smallest observation and the per-token slope the largest: a safe line.
                per_token = max(self._per_token) if self._per_token else 0.0
                self._cached = (min(self._base), per_token)
            fastest, per_token = self._cached
            estimate = fastest + per_token * tokens
        bound = self._slack * estimate + self._floor
        # The exponent is capped: past a few doublings any bound is beyond the maximum anyway.
        bound *= 2.0 ** min(max(timed_out, 0), 32)
        return max(self._minimum, min(self._maximum, bound))

    def __repr__(self) -> str:
        return f"CallTimeouts(samples={len(self._base)}, next_1024={self.timeout_for(1024):.1f}s)"
