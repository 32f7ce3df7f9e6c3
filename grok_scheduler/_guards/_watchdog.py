"""The hang watchdog's bounds: how long a stream may stay silent, learned per model.

A stream says early whether the server is alive, so a hung call is judged by silence, not by
the length of the whole answer: the time to the first byte, and then the longest gap between
chunks. Each bound is a high percentile of what this model's streams showed, times headroom,
never below a floor; so it holds at 50 ms latencies (the floor: cut within seconds) and at 60 s
ones (the learned time: never cut a slow but healthy model). Before a few streams were seen a
generous prior holds, and each attempt of a job that was cut for silence doubles the next
attempt's bounds, so a call that really is slower gets its time.

Learning must not wait for whole answers: a time to first byte is recorded when it happens
(:meth:`StreamWatch.heard_first`), and a silent attempt asks again as it waits (the caller
re-checks on a doubling schedule, :meth:`StreamWatch.next_check`), so a hang sent before anything
was learned is cut as soon as the model's first answers show it is a hang, not at the prior.

The first answers of a run are its fastest, though: with a hundred calls in flight, the first
three first bytes say little about the slowest (the slow ones have not answered yet). So a
learned bound ``B`` judges an attempt only if its peers (the calls sent from ``B`` before it
until ``B`` ago, each given at least ``B``) have nearly all answered; while they are silent too
the model is slow, not this call hung, and the larger of the prior and ``B`` holds.

And as on the plain road (:mod:`._timeouts`), a wave is the world: an attempt is not cut short
of the maximum while more than 10% of the streams opened before it are still in the same kind
of silence (awaiting their first byte; for a gap, still open, since gaps are learned from whole
streams). One of the first three of a wave has no such elders, so the bounds learned from the
streams sent after it (their fastest) do not judge it alone. The prior (90 s, the plain road's
30 s times its slack of 3) sits above a reasoning model's 30-60 s think: a 30 s prior cut and
paid again dozens of healthy calls in review (300 jobs at 5 rps, median 30 s, 78 resent).
Only the last 100 streams count toward a wave, so a slow wave late in a run is one too; and a
peer cut while silent still counts (awaiting a first byte, or in a gap), so such a wave's calls
are not cut one by one as the first cuts leave it, until its job answers promptly when tried
again (then it was a hang, and would shelter the next one).

A storm of hangs is a wave of silences as well, one that never ends. When the model's recent
silences past the learned bound show it and the jobs cut lately confirm it
(:class:`SilenceRecords`: most calls answered within the bound, those silent past it, watched a
minute or more, never spoke again, and the cut jobs answered promptly when tried again), no
wave shelters a silence: the learned bound judges it (review: 30% of calls hanging held each
one 900 s).
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque

from ._silences import Silence, SilenceRecords

__all__ = ["StreamWatch"]

_WINDOW = 200
_MIN_SAMPLES = 3
_MAX_DOUBLINGS = 8
# A learned first-byte bound judges an attempt only when at least this share of the calls that
# have had as long have answered (their silence would otherwise say "slow model", not "hung").
_PEERS_ANSWERED = 0.9
# While more than this share of the streams opened up to one still await their first byte, it
# is not cut short of the maximum: a wave of slow first bytes (a reasoning model thinking) is the
# world, not a hang, and a bound learned meanwhile comes from the wave's fastest answers.
_UNSETTLED_SHARE = 0.1
_WAVE_SPAN = 100


def _quantile(samples: deque[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class StreamWatch:
    """Learns one model's time to first byte and longest gap; proposes the silence bounds."""

    __slots__ = (
        "_answered",
        "_cut_in_gap",
        "_cut_silent",
        "_first_byte",
        "_first_byte_floor",
        "_gap_floor",
        "_gaps",
        "_headroom",
        "_learned",
        "_maximum",
        "_prior",
        "_quantile",
        "_running",
        "_silenced",
        "_silences",
        "_tickets",
        "_waiting",
    )

    def __init__(
        self,
        *,
        silences: SilenceRecords | None = None,
        first_byte_floor: float = 2.0,
        gap_floor: float = 2.0,
        headroom: float = 2.0,
        quantile: float = 0.99,
        prior: float = 90.0,
        maximum: float = 900.0,
    ) -> None:
        self._first_byte_floor = first_byte_floor
        self._gap_floor = gap_floor
        self._headroom = headroom
        self._quantile = quantile
        self._prior = prior
        self._maximum = maximum
        self._first_byte: deque[float] = deque(maxlen=_WINDOW)
        self._gaps: deque[float] = deque(maxlen=_WINDOW)
        # Start times of the answered samples (sorted) and of attempts awaiting a first byte.
        self._answered: deque[float] = deque(maxlen=_WINDOW)
        # Start times (sorted) of attempts that ended silent for at least the floor (cut,
        # mostly): peers that did not answer, though no longer waiting.
        self._cut_silent: deque[float] = deque(maxlen=_WINDOW)
        # Tickets of recent attempts cut silent mid-stream: still part of a wave of gaps (a
        # reasoning model thinking after an opening chunk), though no longer open.
        self._cut_in_gap: set[int] = set()
        self._waiting: dict[int, float] = {}
        # Tickets of the attempts whose streams are open (first byte or not).
        self._running: set[int] = set()
        self._tickets = itertools.count()
        # What the recent attempts' silences became: tells a storm of hangs from a slow wave
        # (shared with the model's plain calls, see CallTimeouts.silences).
        self._silences = SilenceRecords() if silences is None else silences
        self._silenced: dict[int, Silence] = {}
        # The learned (first byte, gap) percentiles; None when they must be sorted again.
        self._learned: list[float | None] = [None, None]

    def observe(self, first_byte: float, longest_gap: float) -> None:
        """Record one complete stream: seconds to its first byte and its longest silence."""
        if first_byte >= 0:
            self._first_byte.append(first_byte)
            self._learned[0] = None
        if longest_gap >= 0:
            self._gaps.append(longest_gap)
            self._learned[1] = None

    def waiting(self, started: float) -> int:
        """An attempt sent at ``started`` awaits its first byte; returns its ticket."""
        ticket = next(self._tickets)
        self._waiting[ticket] = started
        self._running.add(ticket)
        self._silenced[ticket] = self._silences.opened(started)
        return ticket

    def spoke(self, ticket: int, now: float) -> None:
        """The stream of ``ticket`` sent a chunk (an answer or not) at ``now``."""
        silence = self._silenced.get(ticket)
        if silence is not None:
            silence.spoke(now)

    def heard_first(self, ticket: int, started: float, now: float) -> bool:
        """The attempt of ``ticket`` received its first answer (not an error) at ``now``.

        True the first time (what follows are later frames of the same attempt).
        """
        if self._waiting.pop(ticket, None) is None:
            return False
        self.observe(now - started, -1.0)
        if len(self._answered) == self._answered.maxlen:
            self._answered.popleft()
        # Nearly always appended at the end: attempts answer roughly in the order sent.
        bisect.insort(self._answered, started)
        return True

    def gone(
        self, ticket: int, now: float | None = None, *, completed: bool = False, cut: bool = False
    ) -> None:
        """The attempt of ``ticket`` ended at ``now`` (answered, cut, failed or left).

        ``completed``: its stream was read to the end, so its gaps are all known; ``cut``:
        the watchdog ended it (only such silences keep a place in a wave: a connection
        dropped mid-stream is not a thinking peer, and its job is never forgiven).
        """
        started = self._waiting.pop(ticket, None)
        self._running.discard(ticket)
        silence = self._silenced.pop(ticket, None)
        if now is None:
            if silence is not None:
                silence.forget()  # left by its caller: not evidence either way
            return
        if cut and started is not None and now - started >= self._first_byte_floor:
            if len(self._cut_silent) == self._cut_silent.maxlen:
                self._cut_silent.popleft()
            bisect.insort(self._cut_silent, started)
        elif cut and started is None and silence is not None and not completed:
            self._cut_in_gap.add(ticket)
            if len(self._cut_in_gap) > 2 * _WAVE_SPAN:  # only the last 100 tickets count
                self._cut_in_gap = {t for t in self._cut_in_gap if t >= ticket - _WAVE_SPAN}
        if silence is not None:
            silence.end(now, completed=completed)

    def cut_made(self, now: float) -> None:
        """An attempt is cut for its silence (its job's next attempt tells what it was)."""
        self._silences.cut_made(now)

    def cut_told(self, *, prompt: bool) -> None:
        """The next attempt of a job cut for silence answered promptly (a hang) or not."""
        self._silences.cut_told(prompt=prompt)

    def refused(self, ticket: int, now: float) -> None:
        """The attempt of ``ticket`` was answered with an error status: not a silence."""
        self._waiting.pop(ticket, None)
        self.spoke(ticket, now)

    def forgive(self, ticket: int, started: float) -> None:
        """A job's attempt ``ticket`` sent at ``started``, cut while silent, answered promptly
        when tried again: that silence was a hang, not a member of a slow wave, and no longer
        counts as a silent peer (a hang's peers would otherwise shelter the next hang)."""
        at = bisect.bisect_left(self._cut_silent, started)
        if at < len(self._cut_silent) and self._cut_silent[at] == started:
            del self._cut_silent[at]
        self._cut_in_gap.discard(ticket)

    def first_byte_limit(
        self,
        *,
        cut_before: int = 0,
        started: float | None = None,
        now: float | None = None,
        ticket: int | None = None,
    ) -> float:
        """Seconds a call may take to send its first byte (``cut_before``: earlier cuts).

        Given the attempt's ``started``, ``now`` and ``ticket``, the learned bound applies
        only if the calls that have had that long nearly all answered; else the prior holds.
        Given its ``ticket``, an attempt is not cut short of the maximum while more than 10%
        of the streams opened up to it still await their first byte (as the plain road does).
        """
        wave = 0.0 if ticket is None else self._wave(ticket, self._waiting)
        if not self._enough(self._first_byte):
            if wave is not None and wave > _UNSETTLED_SHARE:
                return self._maximum
            return self._bound(self._prior, self._first_byte_floor, cut_before)
        learned = max(self._first_byte_floor, self._headroom * self._percentile(0))
        # One of the first of its wave has no earlier peers: those sent after it that have
        # had half as long stand in for them (else it would be judged by the wave's fastest).
        had = learned if wave is not None else learned / 2
        sheltered = (wave is not None and wave > _UNSETTLED_SHARE) or (
            started is not None
            and now is not None
            and not self._tested(learned, started, now, ticket, had=had)
        )
        if sheltered and not self._storm(learned, now, first_byte=True):
            if wave is not None and wave > _UNSETTLED_SHARE:
                return self._maximum
            learned = max(learned, self._prior)
        return self._bound(learned, self._first_byte_floor, cut_before)

    def gap_limit(
        self, *, cut_before: int = 0, ticket: int | None = None, now: float | None = None
    ) -> float:
        """Seconds a stream may stay silent between chunks.

        Given its ``ticket``, an attempt is not cut short of the maximum while more than 10%
        of the streams opened up to it are still open: the gaps are learned from whole
        streams, and the first to end are the wave's fastest (a reasoning model's pause to
        think is a gap too when the stream opens with an empty chunk).
        """
        wave = 0.0 if ticket is None else self._wave(ticket, self._running, self._cut_in_gap)
        if not self._enough(self._gaps):
            if wave is not None and wave > _UNSETTLED_SHARE:
                return self._maximum
            return self._bound(self._prior, self._gap_floor, cut_before)
        learned = max(self._gap_floor, self._headroom * self._percentile(1))
        sheltered = wave is None or wave > _UNSETTLED_SHARE
        if sheltered and not self._storm(learned, now, first_byte=False):
            if wave is not None:
                return self._maximum
            learned = max(learned, self._prior)  # one of the first of its wave
        return self._bound(learned, self._gap_floor, cut_before)

    def _storm(self, learned: float, now: float | None, *, first_byte: bool) -> bool:
        """Do silences past ``learned`` never end, lately? Then no wave shelters them.

        A storm of hangs is a wave of silences too; what tells it from a slow wave is that
        its silences stay silent (:class:`SilenceRecords`). Asked for a job cut before, it
        is answered by such jobs' attempts: when theirs never end either, the cut was bad
        luck, not a slow job, and its bound is not doubled (a job hung four times in a row
        waited 2 + 4 + 8 + 16 s; on the plain road 9 + 18 + 36 + 78 s).
        """
        return now is not None and self._silences.storm(learned, now, first_byte=first_byte)

    def next_check(self, silent: float, limit: float) -> float:
        """Silence (seconds) at which to ask again, for a bound of ``limit`` now.

        Doubling from the floor up to ``limit``: a handful of wake-ups per silence, never a
        poll, and a bound that shrank while the attempt waited is applied within 2x.
        """
        floor = min(self._first_byte_floor, self._gap_floor)
        step = floor
        while step <= silent:
            step *= 2.0
        return min(limit, step)

    @staticmethod
    def _enough(samples: deque[float]) -> bool:
        return len(samples) >= _MIN_SAMPLES

    @staticmethod
    def _wave(
        ticket: int, unanswered: dict[int, float] | set[int], cut: set[int] | None = None
    ) -> float | None:
        """Share of the streams opened before ``ticket`` still in this silence; None if < 3.

        Fewer than three earlier streams ended: what was learned came from streams opened
        after this one, the fastest of its wave, so it does not judge this one.
        """
        # Counted only when a silent attempt is judged again (on a doubling schedule), and
        # among the recent streams only: a slow wave late in a run is a wave too.
        since = max(0, ticket - _WAVE_SPAN)
        older = sum(
            1
            for other in range(since, ticket)
            if other in unanswered or (cut is not None and other in cut)
        )
        opened = min(ticket, _WAVE_SPAN)
        if opened - older < _MIN_SAMPLES and ticket < _WAVE_SPAN:
            return None
        return older / opened if opened else None

    def _tested(
        self, bound: float, started: float, now: float, ticket: int | None, *, had: float
    ) -> bool:
        """Did the calls sent near this one that have had ``had`` seconds nearly all answer?

        Those sent up to ``bound`` before it, and those sent after it at least ``had`` ago;
        none (a lone call) leaves the learned bound to judge.
        """
        early, late = started - bound, now - had
        answered = bisect.bisect_right(self._answered, late) - bisect.bisect_left(
            self._answered, early
        )
        silent = sum(
            1 for t, began in self._waiting.items() if early <= began <= late and t != ticket
        )
        # Peers cut while silent did not answer either: without them, the first calls of a
        # slow wave late in a run, cut one by one, each found its peers all answered.
        silent += bisect.bisect_right(self._cut_silent, late) - bisect.bisect_left(
            self._cut_silent, early
        )
        return answered >= _PEERS_ANSWERED * (answered + silent)

    def _percentile(self, which: int) -> float:
        percentile = self._learned[which]
        if percentile is None:
            samples = self._first_byte if which == 0 else self._gaps
            percentile = self._learned[which] = _quantile(samples, self._quantile)
        return percentile

    def _bound(self, bound: float, floor: float, cut_before: int) -> float:
        bound = max(bound, floor) * 2.0 ** min(max(cut_before, 0), _MAX_DOUBLINGS)
        return min(bound, self._maximum)

    def __repr__(self) -> str:
        return (
            f"StreamWatch(samples={len(self._first_byte)}, waiting={len(self._waiting)}, "
            f"first_byte_limit={self.first_byte_limit():.2f}s, gap_limit={self.gap_limit():.2f}s)"
        )
