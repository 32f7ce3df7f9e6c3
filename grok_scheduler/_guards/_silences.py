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
minority (some prompts think for minutes) looks like a storm until its answers come, so a
silence counts as one that never ends only after a minute (review: watched 20 s, a minority
thinking ~60 s after an opening chunk was cut at the 2 s gap floor, 91 of 300 paid twice), and
what looks like a storm is confirmed by the jobs it cut (:meth:`SilenceRecords.storm`): a
storm's hangs were bad luck, so their jobs answer promptly when tried again, where a hard
prompt is slow again. Until two of them (and half) did, only three cuts at a time await that
answer; after the cut jobs said "slow", one. The price is that a storm's hangs are held a
minute or so before the evidence is in. Calls cut early are censored (nobody knows what they
would have become), so the evidence of silences comes only from those watched to the end of
the hold, never from the cuts it led to. Plain calls and streams of a model share one record:
a plain answer came no sooner than its first byte would have.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["MIN_HOLD", "Silence", "SilenceRecords"]

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
# A storm is confirmed once at least this many of the last jobs cut (and half of them)
# answered promptly when tried again; until then at most _PROBES cuts are awaiting that.
_CONFIRM = 2
_PROMPT_SHARE = 0.5
_OUTCOMES = 10
_PROBES = 3
_CUT_FORGOTTEN = 300.0
# The verdict is read again at most this often (seconds of the clock): silences change slowly,
# and every silent attempt asks on its doubling schedule.
_FRESH = 1.0
_SAME_BOUND = math.log(1.1)


def _hold_for(bound: float) -> float:
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
        "started",
    )

    def __init__(self, started: float) -> None:
        self.started = started
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

    __slots__ = ("_outcomes", "_pending_cuts", "_streams", "_verdicts")

    def __init__(self) -> None:
        self._streams: deque[Silence] = deque(maxlen=_KEPT)
        # (first byte or gap, bound) -> (read at, verdict)
        self._verdicts: dict[tuple[bool, int], tuple[float, bool]] = {}
        # When the cuts were made whose jobs have not tried again yet, and whether the last
        # jobs cut answered promptly when tried again.
        self._pending_cuts: deque[float] = deque(maxlen=_OUTCOMES)
        self._outcomes: deque[bool] = deque(maxlen=_OUTCOMES)

    def storm(self, bound: float, now: float, *, first_byte: bool) -> bool:
        """May silences past ``bound`` be cut as hangs, though a wave would shelter them?

        They look like hangs (:meth:`hangs_past`), and the jobs cut lately answered promptly
        when tried again (a storm's hangs are bad luck). Silences that never ended within the
        hold may yet be a slow minority's (a prompt that thinks for three minutes), which is
        slow again when tried again: until the cut jobs tell which, only a few are cut at a
        time (probes), and one at a time once they said "slow".
        """
        if not self.hangs_past(bound, now, first_byte=first_byte):
            return False
        prompt = sum(self._outcomes)
        if prompt >= _CONFIRM and prompt >= _PROMPT_SHARE * len(self._outcomes):
            return True
        while self._pending_cuts and now - self._pending_cuts[0] > _CUT_FORGOTTEN:
            self._pending_cuts.popleft()  # its job never came back (failed, cancelled)
        refuted = len(self._outcomes) >= _CONFIRM + 1
        return len(self._pending_cuts) < (1 if refuted else _PROBES)

    def cut_made(self, now: float) -> None:
        """An attempt was cut for its silence; its job's next attempt will tell what it was."""
        while self._pending_cuts and now - self._pending_cuts[0] > _CUT_FORGOTTEN:
            self._pending_cuts.popleft()  # its job never came back (failed, cancelled)
        self._pending_cuts.append(now)

    def cut_told(self, *, prompt: bool) -> None:
        """The next attempt of a job cut for silence answered promptly (a hang) or not."""
        if self._pending_cuts:
            self._pending_cuts.popleft()
        self._outcomes.append(prompt)

    def opened(self, started: float) -> Silence:
        """An attempt was sent at ``started``."""
        silence = Silence(started)
        self._streams.append(silence)
        return silence

    def hangs_past(self, bound: float, now: float, *, first_byte: bool) -> bool:
        """Is a silence past ``bound`` a hang, by what the recent streams' silences became?

        ``first_byte``: the silence before the first byte; else a gap between chunks.
        """
        # Bounds within 10% of each other share a verdict: a learned bound moves with every
        # answer, and each silent attempt asks on its schedule (a scan of up to 400 records).
        key = (first_byte, int(math.log(max(bound, 1e-3)) / _SAME_BOUND))
        known = self._verdicts.get(key)
        if known is not None and now - known[0] < _FRESH:
            return known[1]
        verdict = self._read(bound, now, first_byte)
        if len(self._verdicts) > 64:
            self._verdicts.clear()
        self._verdicts[key] = (now, verdict)
        return verdict

    def _read(self, bound: float, now: float, first_byte: bool) -> bool:
        hold = _hold_for(bound)
        fate = self._first_byte if first_byte else self._gap
        # The recent streams say whether the model is alive; the recent silences past the
        # bound (however many quick answers came between) what such silences become.
        recent = quick = 0
        spoke_again = dead = 0
        for stream in reversed(self._streams):
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
