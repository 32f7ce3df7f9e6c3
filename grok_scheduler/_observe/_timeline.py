"""The run's time series: per model, what happened each second, coarser as it ages.

A user asking why a job took forty minutes wants to see when the 429s came and what the
scheduler learned. :class:`Timeline` keeps, per model, one row per second of requests sent and
accepted, 429s by dimension, retries by cause, tokens, calls in flight, call times and the
learned limits. Memory is bounded for runs of days: each row is also folded into coarser levels
(10 s, 1 min, 10 min, 1 h), and each level keeps only its last so many rows, so recent seconds
are sharp and last night is in minutes.

The hot path pays one comparison and a few list increments per event; closing a second (once
per second with events) copies one row and folds it upwards. Rows are stored in ``array``
columns of float32 (start times in float64): about 130 bytes a row, under 400 kB per model for
a day. Empty seconds are not stored; readers fill them (counts as zero, levels as before).
"""

from __future__ import annotations

import itertools
import math
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._rows import (
    _ACCEPTED,
    _CALL0,
    _CALL_SUM,
    _CAUSE_INDEX,
    _FAILED,
    _LEVEL,
    _NO_LIMIT,
    _PEAK,
    _RL_REQ,
    _RL_TOK,
    _RL_UNK,
    _RPS,
    _SENT,
    _TOKENS,
    _TPM,
    _WIDTH,
    CALL_TIME_BUCKETS,
    COLUMNS,
    RETRY_CAUSES,
    ModelSeries,
    _fill_gaps,
    _merged,
)

if TYPE_CHECKING:
    from .._wire._classify import Verdict

__all__ = [
    "CALL_TIME_BUCKETS",
    "COLUMNS",
    "LEVELS",
    "ModelSeries",
    "Probe",
    "RETRY_CAUSES",
    "Timeline",
    "TimelineSnapshot",
]

#: (row width in seconds, rows kept) per level: 10 min of seconds, 2 h of 10 s, 1 day of
#: minutes, 1 week of 10 min, 30 days of hours.
LEVELS: tuple[tuple[float, int], ...] = (
    (1.0, 600),
    (10.0, 720),
    (60.0, 1440),
    (600.0, 1008),
    (3600.0, 720),
)

#: Read when a row opens: ``model -> (in_flight, requests_per_second, tokens_per_minute)``.
Probe = Callable[[str], tuple[int, float | None, float | None]]


class _Level:
    """One resolution: a ring of closed rows and the row now being filled from finer ones."""

    __slots__ = ("_head", "capacity", "pending", "pending_start", "starts", "values", "width")

    def __init__(self, width: float, capacity: int) -> None:
        self.width = width
        self.capacity = capacity
        self.starts: array[float] = array("d")
        self.values: array[float] = array("f")
        self._head = 0  # the oldest row once the ring is full
        self.pending: list[float] | None = None
        self.pending_start = 0.0

    def push(self, start: float, row: list[float]) -> None:
        if len(self.starts) < self.capacity:
            self.starts.append(start)
            self.values.extend(row)
            return
        # Full: the oldest row makes room (coarser levels still hold its time).
        i = self._head
        self.starts[i] = start
        self.values[i * _WIDTH : (i + 1) * _WIDTH] = array("f", row)
        self._head = (i + 1) % self.capacity

    def rows(self) -> Iterator[tuple[float, array[float]]]:
        """Closed rows, oldest first, then the pending one."""
        n = len(self.starts)
        for k in range(n):
            i = (self._head + k) % n
            yield self.starts[i], self.values[i * _WIDTH : (i + 1) * _WIDTH]
        if self.pending is not None:
            yield self.pending_start, array("f", self.pending)

    def copy(self) -> _Level:
        twin = _Level(self.width, self.capacity)
        twin.starts = array("d", self.starts)
        twin.values = array("f", self.values)
        twin._head = self._head
        twin.pending = None if self.pending is None else list(self.pending)
        twin.pending_start = self.pending_start
        return twin

    @property
    def full(self) -> bool:
        return len(self.starts) >= self.capacity

    def nbytes(self) -> int:
        return len(self.starts) * 8 + len(self.values) * 4


class _Series:
    """One model's levels and the second being counted now (the hot path's target)."""

    __slots__ = ("levels", "now_end", "now_row", "now_start")

    def __init__(self) -> None:
        self.levels = [_Level(width, capacity) for width, capacity in LEVELS]
        self.now_row: list[float] | None = None
        self.now_start = 0.0
        self.now_end = -math.inf

    def close(self) -> None:
        """Close the second being counted: store it and fold it into the coarser levels."""
        row = self.now_row
        if row is not None:
            self.now_row = None
            self._push(0, self.now_start, row)

    def _push(self, index: int, start: float, row: list[float]) -> None:
        levels = self.levels
        levels[index].push(start, row)
        if index + 1 == len(levels):
            return
        upper = levels[index + 1]
        upper_start = math.floor(start / upper.width) * upper.width
        if upper.pending is not None and upper_start != upper.pending_start:
            done, done_start = upper.pending, upper.pending_start
            upper.pending = None
            self._push(index + 1, done_start, done)
        if upper.pending is None:
            upper.pending = list(row)
            upper.pending_start = upper_start
        else:
            upper.pending = _merged(upper.pending, row)


@dataclass(frozen=True, slots=True)
class TimelineSnapshot:
    """A frozen copy of the time series; :meth:`series` turns a model's rows into columns."""

    started_at: float
    """The clock's reading when the timeline began (``starts`` count from here)."""
    wall_started_at: float | None
    """The same moment as a Unix time, when known (for dates on a chart)."""
    now: float
    """Seconds since the start when the snapshot was taken."""
    nbytes: int
    """The memory the stored rows take."""
    _frozen: Mapping[str, _Frozen] = field(repr=False)

    @property
    def models(self) -> tuple[str, ...]:
        """The models that sent anything, in order of their first call."""
        return tuple(self._frozen)

    def series(self, model: str) -> ModelSeries:
        """``model``'s rows as columns, oldest first, empty seconds filled in."""
        frozen = self._frozen.get(model)
        rows = _fill_gaps(tuple(_stitch(*frozen)) if frozen is not None else ())
        if rows and rows[-1][0] < self.now < rows[-1][0] + rows[-1][1]:
            # The second still being counted has lasted only this long: rates divide by that.
            start, _, values = rows[-1]
            rows[-1] = (start, self.now - start, values)
        columns = {name: tuple(row[2][i] for row in rows) for i, name in enumerate(COLUMNS)}
        return ModelSeries(
            model,
            tuple(row[0] for row in rows),
            tuple(row[1] for row in rows),
            columns,
        )


class Timeline:
    """Per-model rows, fed from the hot path; bounded however long the run.

    ``probe(model)`` is read when a row opens (at most once a second per model): the calls
    in flight and the learned limits at that moment.
    """

    __slots__ = ("_by_model", "_origin", "_probe", "_wall_origin")

    def __init__(
        self,
        *,
        started_at: float = 0.0,
        wall_started_at: float | None = None,
        probe: Probe | None = None,
    ) -> None:
        self._origin = started_at
        self._wall_origin = wall_started_at
        self._probe: Probe = probe or _no_probe
        self._by_model: dict[str, _Series] = {}

    def begin(self, started_at: float, wall_started_at: float | None = None) -> None:
        """Count from ``started_at`` (the scheduler starts it when its clock can be read)."""
        if not self._by_model:
            self._origin = started_at
            self._wall_origin = wall_started_at

    def __repr__(self) -> str:
        return f"Timeline(models={list(self._by_model)}, nbytes={self.nbytes()})"

    def _row(self, model: str, now: float) -> list[float]:
        """The row counting ``now`` for ``model`` (closing the previous second if it ended)."""
        series = self._by_model.get(model)
        if series is None:
            series = self._by_model[model] = _Series()
        row = series.now_row
        if row is not None and now < series.now_end:
            return row
        series.close()
        start = math.floor(now - self._origin)
        series.now_start = float(start)
        series.now_end = self._origin + start + 1.0
        row = series.now_row = [0.0] * _WIDTH
        # The state at the second's first event stands for the second (and for the idle
        # seconds after it, when readers fill them in).
        in_flight, rps, tpm = self._probe(model)
        row[_LEVEL] = row[_PEAK] = in_flight
        row[_RPS] = _NO_LIMIT if rps is None else rps
        row[_TPM] = _NO_LIMIT if tpm is None else tpm
        return row

    # -- the hot path -----------------------------------------------------------------------
    def sent(self, model: str, now: float, in_flight: int) -> None:
        """A call of ``model`` went out; ``in_flight`` counts it."""
        row = self._row(model, now)
        row[_SENT] += 1
        if in_flight > row[_PEAK]:
            row[_PEAK] = in_flight

    def accepted(self, model: str, now: float, tokens: int, call_seconds: float) -> None:
        """A call of ``model`` answered successfully, using ``tokens``."""
        row = self._row(model, now)
        row[_ACCEPTED] += 1
        row[_TOKENS] += tokens
        row[_CALL_SUM] += call_seconds
        row[_CALL0 + bisect_left(CALL_TIME_BUCKETS, call_seconds)] += 1

    def failed_attempt(self, model: str, now: float, verdict: Verdict) -> None:
        """An attempt failed (a 429 counted by the dimension it named)."""
        row = self._row(model, now)
        row[_FAILED] += 1
        if verdict.is_rate_limit:
            dimension = verdict.limit_dimension
            row[
                _RL_REQ
                if dimension == "requests"
                else _RL_TOK
                if dimension == "tokens"
                else _RL_UNK
            ] += 1

    def retried(self, model: str, now: float, cause: str) -> None:
        """A failed attempt will be retried; ``cause`` is ``attempt_outcome``'s label.

        Labels other than :data:`RETRY_CAUSES` (``client_error``, ...) count as ``other``.
        """
        self._row(model, now)[_CAUSE_INDEX.get(cause, _CAUSE_INDEX["other"])] += 1

    # -- reading ----------------------------------------------------------------------------
    def nbytes(self) -> int:
        """The memory the stored rows take (the arrays; a few hundred bytes more per model)."""
        return sum(level.nbytes() for s in self._by_model.values() for level in s.levels)

    def snapshot(self, now: float) -> TimelineSnapshot:
        """A frozen copy of every model's rows up to ``now`` (the current second included).

        Copying is cheap (the columns are arrays); rows are put together only when a model's
        :meth:`TimelineSnapshot.series` is asked for, so ``statistics()`` stays fast.
        """
        frozen = {model: _freeze(series) for model, series in self._by_model.items()}
        return TimelineSnapshot(
            started_at=self._origin,
            wall_started_at=self._wall_origin,
            now=now - self._origin,
            nbytes=self.nbytes(),
            _frozen=frozen,
        )


#: A model's levels (copied) and the second being counted, as a snapshot keeps them.
_Frozen = tuple[list["_Level"], list[tuple[float, "array[float]"]]]


def _freeze(series: _Series) -> _Frozen:
    current = [] if series.now_row is None else [(series.now_start, array("f", series.now_row))]
    return [level.copy() for level in series.levels], current


def _stitch(
    levels: list[_Level], current: list[tuple[float, array[float]]]
) -> Iterator[tuple[float, float, tuple[float, ...]]]:
    """Each level's rows older than what the finer levels still hold, oldest first.

    A coarse row is taken only if it ends by the first boundary of its width at or after the
    oldest finer row; finer rows before that boundary are dropped, so no time is counted twice
    and none is missed.
    """
    finest = [*levels[0].rows(), *current]
    layers = [[(s, levels[0].width, tuple(v)) for s, v in finest]]
    cutoff = finest[0][0] if finest else 0.0
    for finer, level in itertools.pairwise(levels):
        if not finer.full:
            break  # nothing older than the finer rows was ever dropped
        boundary = math.ceil(cutoff / level.width) * level.width
        layers[-1] = [row for row in layers[-1] if row[0] >= boundary]
        older = [(s, level.width, tuple(v)) for s, v in level.rows() if s + level.width <= boundary]
        layers.append(older)
        if not older:
            break
        cutoff = older[0][0]
    for layer in reversed(layers):
        yield from layer


def _no_probe(_model: str) -> tuple[int, float | None, float | None]:
    return 0, None, None
