"""What became of the silences of one model's recent calls: evidence that a silence is a hang.

The watchdog (:mod:`._watchdog`) does not cut a stream short of its maximum while many streams
opened before it are as silent (nor the plain road a call, :mod:`._timeouts`): a wave of
silences (a reasoning model thinking) is the world, and what was learned meanwhile came from the
wave's fastest answers. But a storm of hangs is a wave of silences too, one that never ends:
with 30% of calls hanging, the hangs sheltered each other and each waited the 900 s maximum
(review: 300 jobs, 1 s answers, 299 s -> 1,289 s).

The two differ in what the silences become. A slow wave answers: of the calls that stayed silent
past the learned bound, some answer later (a lognormal think, sigma 1, read with a bound a
tenth of its median: about 1 in 6 of those silent past it answer within 4x it). Hangs never do.
So a silence past ``s`` is taken for a hang when, among the model's recent calls that have been
watched long enough (``hold``: 4 x ``s``, and at least :data:`MIN_HOLD` seconds):

* most (half or more) answered within ``s``: the model is alive, and ``s`` is its normal time;
* at least :data:`MIN_DEAD` of the last 20 silences past ``s`` lasted the whole ``hold``, and
* hardly any of them ever ended in an answer (at most 1 in 10).

A wave of slow calls has no majority answered within a bound learned from its fastest. A slow
minority (some prompts think for a minute) looks like a storm until its answers come, so a
silence counts as one that never ends only after a minute (review: watched 20 s, a minority
thinking ~60 s after an opening chunk was cut at the 2 s gap floor, 91 of 300 paid twice);
the price is that a storm's hangs are held about a minute before the evidence is in. A job cut
as a hang is judged by retried attempts only: a hard prompt is slow again, where a storm's
hangs were bad luck and its retries mostly quick. Calls cut early are censored (nobody knows
what they would have become), so the evidence comes only from silences watched to the end of
the hold, never from the cuts it led to. Plain calls and streams of a model share one record:
a plain answer came no sooner than its first byte would have.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["MIN_DEAD", "MIN_HOLD", "Silence", "SilenceRecords", "hold_for"]

# How many recent, fully watched streams the evidence is read from.
_RECENT = 40
# How many recent silences past the bound tell what such silences become.
_SILENCES = 20
_KEPT = 400
# A silence is watched this many times its bound before it counts as one that never ended.
_HOLD_FACTOR = 4.0
MIN_HOLD = 60.0
MIN_DEAD = 3
# At most this share of the silences past the bound may have ended in an answer.
_SPOKE_AGAIN = 0.1
# Most of the recent streams answered within the bound: the model is alive.
_ALIVE = 0.5
# The verdict is read again at most this often (seconds of the clock): silences change slowly,
# and every silent attempt asks on its doubling schedule.
_FRESH = 1.0
_SAME_BOUND = math.log(1.1)


def hold_for(bound: float) -> float:
    """How long a silence past ``bound`` is watched before it counts as one that never ends."""
    return max(_HOLD_FACTOR * bound, MIN_HOLD)


class Silence:
    """One attempt's silences: when it started, first spoke, last spoke, and ended."""

    __slots__ = (
        "completed",
        "ended_at",
        "first_at",
        "last_at",
        "longest_gap",
        "retried",
        "started",
    )

    def __init__(self, started: float, retried: bool) -> None:
        self.started = started
        self.retried = retried
        self.first_at: float | None = None
        self.last_at = started
        self.longest_gap = 0.0
        self.ended_at: float | None = None
        self.completed = False

    def spoke(self, now: float) -> None:
        """The attempt sent a chunk (or, not streamed, its whole answer) at ``now``."""
        if self.ended_at is not None:
            return
        if self.first_at is None:
            self.first_at = now
        else:
            self.longest_gap = max(self.longest_gap, now - self.last_at)
        self.last_at = now

    def end(self, now: float, *, completed: bool) -> None:
        """The attempt ended at ``now`` (``completed``: read to its end)."""
        if self.ended_at is None:
            self.ended_at = now
            self.completed = completed

    def forget(self) -> None:
        """Not an attempt to learn from (it streamed instead): a silence of nothing."""
        if self.ended_at is None:
            self.ended_at = self.started


class SilenceRecords:
    """The recent attempts of one model, and the verdict they give on a silence past a bound.

    Shared by the plain road and the streams of one model: a plain call's answer came no
    sooner than a streamed call's first byte would have, so both tell what silences become.
    """

    __slots__ = ("_streams", "_verdicts")

    def __init__(self) -> None:
        self._streams: deque[Silence] = deque(maxlen=_KEPT)
        # (first byte or gap, retried, bound) -> (read at, verdict)
        self._verdicts: dict[tuple[bool, bool, int], tuple[float, bool]] = {}

    def opened(self, started: float, *, retried: bool) -> Silence:
        """An attempt was sent at ``started`` (``retried``: its job was cut for silence)."""
        silence = Silence(started, retried)
        self._streams.append(silence)
        return silence

    def hangs_past(self, bound: float, now: float, *, first_byte: bool, retried: bool) -> bool:
        """Is a silence past ``bound`` a hang, by what the recent streams' silences became?

        ``first_byte``: the silence before the first byte; else a gap between chunks.
        ``retried``: asked for an attempt of a job already cut for silence, judged by such
        attempts only: a slow minority (prompts that think for a minute) is slow again on
        its next attempt, where a storm's hangs were bad luck and its retries mostly quick.
        """
        # Bounds within 10% of each other share a verdict: a learned bound moves with every
        # answer, and each silent attempt asks on its schedule (a scan of up to 400 records).
        key = (first_byte, retried, int(math.log(max(bound, 1e-3)) / _SAME_BOUND))
        known = self._verdicts.get(key)
        if known is not None and now - known[0] < _FRESH:
            return known[1]
        verdict = self._read(bound, now, first_byte, retried)
        if len(self._verdicts) > 64:
            self._verdicts.clear()
        self._verdicts[key] = (now, verdict)
        return verdict

    def _read(self, bound: float, now: float, first_byte: bool, retried: bool) -> bool:
        hold = hold_for(bound)
        fate = self._first_byte if first_byte else self._gap
        # The recent streams say whether the model is alive; the recent silences past the
        # bound (however many quick answers came between) what such silences become.
        recent = quick = 0
        spoke_again = dead = 0
        for stream in reversed(self._streams):
            if retried and not stream.retried:
                continue
            kind = fate(stream, bound, hold, now)
            if kind is None:
                continue
            if recent < _RECENT:
                recent += 1
                quick += kind == "quick"
            if kind != "quick" and spoke_again + dead < _SILENCES:
                spoke_again += kind == "spoke again"
                dead += kind == "dead"
            if recent >= _RECENT and spoke_again + dead >= _SILENCES:
                break
        return (
            dead >= MIN_DEAD
            and quick >= _ALIVE * recent
            and spoke_again <= _SPOKE_AGAIN * (spoke_again + dead)
        )

    @staticmethod
    def _first_byte(stream: Silence, bound: float, hold: float, now: float) -> str | None:
        if stream.started > now - hold:
            return None  # not watched long enough yet
        if stream.first_at is not None:
            return "quick" if stream.first_at - stream.started <= bound else "spoke again"
        silent = (now if stream.ended_at is None else stream.ended_at) - stream.started
        # Ended before the hold (cut, refused, reset): what it would have become is unknown.
        return "dead" if silent >= hold else None

    @staticmethod
    def _gap(stream: Silence, bound: float, hold: float, now: float) -> str | None:
        if stream.first_at is None or stream.first_at > now - hold:
            return None
        if stream.longest_gap > bound:
            return "spoke again"
        if stream.completed:
            return "quick"
        silent = (now if stream.ended_at is None else stream.ended_at) - stream.last_at
        return "dead" if silent >= hold else None
