"""Per-call timeouts for non-streamed calls, learned from the calls this model completed.

A non-streamed call shows nothing until its whole answer is in, so a hung call can only be told
from a long answer by its duration. The bound is

    slack * (slow call + seconds per token * tokens beyond the longest answer seen) + floor

where *slow call* is a high percentile of the observed durations (whole calls, answers of the
sizes seen included) and *seconds per token* the median duration per answer token, never more
than a slow decoder's ``max_seconds_per_token``: the duration of a short answer is mostly its
time to first token, and spread over its few tokens it would price every token beyond it as if
the first token's wait came again (4 s calls of 16 tokens gave 0.25 s a token, so 48 more tokens
of ``max_tokens=64`` added 36 s to a bound that needs about 16). The result is clamped to
``[minimum, maximum]``; before enough calls were seen a generous prior holds, and a call sent
under the prior is judged again by what its model showed since (:func:`send_watched`), so an
early hang is cut once the model's calls are known, not at the prior.

The slack is 2 on the slow call: the 99th percentile of the last 64 calls is about the
slowest of them, and twice it is passed by fewer than 0.2% of healthy calls even with a tail as
heavy as a reasoning model's (lognormal, sigma 1); a call cut in error is retried with its bound
doubled (below). The floor covers connection set-up and a busy event loop; the minimum (2 s) is
a TCP retransmission or two, below which a cut would be a guess.

At 50 ms calls a hang is cut at the 2 s minimum; at 4 s calls (lognormal, sigma 0.25) after
about 16 s; at 60 s calls after about two slow calls, some four minutes, where streaming on the
wire (:mod:`._watchdog`) cuts a silent call within seconds instead.

Two rules keep a long answer from being cut and bought again. A call without ``max_tokens`` may
answer up to the model's context, so it is bounded as if allowed that many tokens (in practice
the maximum): the largest answer observed so far would be no bound at all, because an answer
longer than the timeout is cut and never observed, so a bound learned from the survivors could
never grow. And a timeout that fired is not repeated unchanged: each timed-out attempt of a job
doubles the next one's bound, up to the maximum. A streamed call is watched by its silences
instead (:mod:`._watchdog`), which needs no guess at the answer's length.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from .._clock import Clock, TimerHandle
from .._transports._base import Transport, TransportResponse
from .._wire._classify import timeout_error
from ._silences import Silence, SilenceRecords

__all__ = ["UNBOUNDED_ANSWER_TOKENS", "CallTimeouts", "send_watched"]

_WINDOW = 64
_MIN_SAMPLES = 8
_REFRESH = 8
_QUANTILE = 0.99
# What a call without max_tokens may generate: the smallest context window of the Grok models
# (131,072 tokens), since the server stops an answer only there.
UNBOUNDED_ANSWER_TOKENS = 131_072
# A call in flight is judged again against its model's current bound first after this long,
# then every quarter of its age: a handful of timer events for a minute-long call, none for a
# fast one (it ends before the first check).
_FIRST_CHECK = 1.0
# While more than this share of the calls sent up to a call are still running, the call is not
# cut (short of the maximum): it is no outlier among its peers, and a bound learned meanwhile
# is survivor-biased (the first answers of a wave are its fastest eight).
_UNSETTLED_SHARE = 0.1
_WAVE_SPAN = 100
# The prior is its own slack: nothing is known of the model yet.
_PRIOR_SLACK = 3.0


def _quantile(samples: deque[float] | deque[int], q: float) -> float:
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class CallTimeouts:
    """Learns call latency and proposes a timeout for the next non-streamed call."""

    __slots__ = (
        "_cached",
        "_durations",
        "_floor",
        "_max_per_token",
        "_maximum",
        "_minimum",
        "_observed",
        "_per_token",
        "_prior_base",
        "_prior_per_token",
        "_running",
        "_sent",
        "_silenced",
        "_silences",
        "_sizes",
        "_slack",
    )

    def __init__(
        self,
        *,
        minimum: float = 2.0,
        maximum: float = 900.0,
        slack: float = 2.0,
        floor: float = 1.0,
        prior_base: float = 30.0,
        prior_per_token: float = 0.1,
        max_seconds_per_token: float = 0.05,
    ) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._slack = slack
        self._floor = floor
        self._prior_base = prior_base
        self._prior_per_token = prior_per_token
        # 20 tokens a second: slower than any model decodes, so a bound never comes up short
        # because of it; a short answer's duration per token is mostly its time to first token.
        self._max_per_token = max_seconds_per_token
        self._durations: deque[float] = deque(maxlen=_WINDOW)
        self._sizes: deque[int] = deque(maxlen=_WINDOW)
        self._per_token: deque[float] = deque(maxlen=_WINDOW)
        # (slow call, longest answer, median seconds per token), refreshed every few
        # observations: sorting the window on every call would cost more than it is worth.
        self._cached: tuple[float, float, float] | None = None
        self._observed = 0
        self._sent = 0
        self._running: set[int] = set()
        # What the recent calls' silences became: tells a storm of hangs from a slow wave.
        self._silences = SilenceRecords()
        self._silenced: dict[int, Silence] = {}

    def begin(self, started: float | None = None) -> int:
        """A non-streamed call is sent: its ticket, for :meth:`end` and ``timeout_for``.

        ``started``: when (None: not a call to learn silences from).
        """
        self._sent += 1
        self._running.add(self._sent)
        if started is not None:
            self._silenced[self._sent] = self._silences.opened(started)
        return self._sent

    @property
    def silences(self) -> SilenceRecords:
        """What this model's recent calls' silences became (its streams add theirs)."""
        return self._silences

    def end(self, ticket: int, now: float | None = None, *, answered: bool = False) -> None:
        """The call of ``ticket`` ended at ``now`` (``answered``: a response came, any status)."""
        self._running.discard(ticket)
        silence = self._silenced.pop(ticket, None)
        if silence is None:
            return
        if now is None:
            silence.forget()
            return
        if answered:
            silence.spoke(now)
        silence.end(now, completed=answered)

    def _settled(self, ticket: int) -> bool:
        # Counted only when a call in flight is judged again (every quarter of its age), and
        # among the recent calls only: a slow wave late in a run is a wave too.
        since = max(1, ticket - _WAVE_SPAN)
        running = self._running
        if len(running) <= ticket + 1 - since:
            # Mostly a few calls in flight: counting them beats probing the whole span (a
            # 100-step loop on every call was a tenth of the scheduler's work per request).
            older_running = sum(1 for other in running if since <= other <= ticket)
        else:
            older_running = sum(1 for other in range(since, ticket + 1) if other in running)
        return older_running <= max(1.0, _UNSETTLED_SHARE * min(ticket, _WAVE_SPAN))

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

    def timeout_for(
        self,
        max_tokens: int | None,
        *,
        timed_out: int = 0,
        ticket: int | None = None,
        now: float | None = None,
    ) -> float:
        """The bound for a call allowed ``max_tokens`` answer tokens (None: the model's context).

        ``timed_out`` counts the job's earlier attempts that hit their timeout: each one doubles
        the bound (up to the maximum), so a call that needs longer than predicted gets it.
        ``ticket`` (from :meth:`begin`) is a call in flight judged again: the learned bound
        cuts it only once most of the calls sent up to it have ended.
        """
        tokens = max_tokens if max_tokens is not None else UNBOUNDED_ANSWER_TOKENS
        prior = _PRIOR_SLACK * (self._prior_base + self._prior_per_token * tokens) + self._floor
        if len(self._durations) < _MIN_SAMPLES:
            # Nothing known yet (and asked again while the call lasts, see send_watched).
            bound = prior
        else:
            slow, longest, per_token = self._learned()
            estimate = slow + min(per_token, self._max_per_token) * max(0.0, tokens - longest)
            bound = self._slack * estimate + self._floor

        unsettled = ticket is not None and not self._settled(ticket)
        # A storm of hangs (the recent calls' silences past the bound never ended): no wave
        # shelters a call. A job's earlier timeouts still double its bound (a hard prompt
        # that thinks for minutes must get them, storm or not).
        storm = (
            unsettled
            and now is not None
            and len(self._durations) >= _MIN_SAMPLES
            and self._silences.storm(max(self._minimum, bound), now, first_byte=True)
        )
        if unsettled and not storm:
            # Most of the calls sent up to this one are still running: it is not an outlier
            # among its peers, and what was learned is their fast part. Judged once they end.
            bound = self._maximum
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


async def send_watched(
    transport: Transport,
    clock: Clock,
    path: str,
    body: bytes,
    *,
    started: float,
    timeout: float,
    bound: Callable[[], float] | None,
) -> TransportResponse:
    """``transport.send`` with ``timeout``, cut earlier once ``bound()`` says it is overdue.

    ``bound`` is the call's learned timeout asked again as the call lasts (None: ``timeout``
    was chosen by the caller and is all there is). A call sent before its model had answered
    enough times was given the prior, over a minute; by the time it has been silent a few
    seconds the model's real calls are known, and a hang is cut at their bound. The cut is an
    :class:`APITimeoutError`, as the transport's own timeout would be.
    """
    if bound is None:
        return await transport.send(path, body, timeout=timeout)
    # The call runs in the caller's own task, cut by cancelling that task (as asyncio.timeout
    # does): in a task of its own, its end would reach the caller one loop step late, and a
    # drain waiting for the transport to go idle could see the answer before its job does.
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    cut: list[float] = []
    timer: TimerHandle | None = None

    def check() -> None:
        nonlocal timer
        timer = None
        elapsed = clock.now() - started
        limit = min(timeout, bound())
        # A timer set for started + limit may wake a hair early in float arithmetic.
        if elapsed >= limit - 1e-9:
            if not task.done():
                cut.append(limit)
                task.cancel()
            return
        due = min(limit, elapsed + max(_FIRST_CHECK, elapsed / 4))
        timer = clock.call_at(started + due, check)

    if timeout > _FIRST_CHECK:
        timer = clock.call_at(started + _FIRST_CHECK, check)
    try:
        return await transport.send(path, body, timeout=timeout)
    except asyncio.CancelledError:
        if cut and task.uncancel() <= cancelling:
            raise timeout_error(
                TimeoutError(f"no answer within {cut[0]:g}s, the model's call bound")
            ) from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
