"""The layout of one row of the run's time series, and a model's rows read back as columns.

A row counts one stretch of time (a second, or a coarser step as the run ages): every column
of :data:`COLUMNS`, and how two rows of it merge into one. :class:`ModelSeries` is what a
reader gets: columns, idle seconds filled in, call-time percentiles per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CALL_TIME_BUCKETS", "COLUMNS", "RETRY_CAUSES", "ModelSeries"]

#: Upper bounds (seconds) of the call-time buckets behind the percentiles over time: the same
#: bounds as the call-time histogram of ``statistics()`` (kept here: that module refers to this
#: one's snapshot, and a module cycle is not worth one tuple).
CALL_TIME_BUCKETS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

#: Why a failed attempt was retried (the labels of ``attempt_outcome``, folded to five).
RETRY_CAUSES: tuple[str, ...] = (
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
    "other",
)

_SUM, _MAX, _LAST = "sum", "max", "last"

# (name, how two rows of it merge). Counts add up; the peak in flight is a maximum; levels
# that hold a state (the in-flight count and the limits at the row's close) keep the later one.
_SPEC: tuple[tuple[str, str], ...] = (
    ("sent", _SUM),
    ("accepted", _SUM),
    ("failed_attempts", _SUM),
    ("rate_limited_requests", _SUM),
    ("rate_limited_tokens", _SUM),
    ("rate_limited_unknown", _SUM),
    *((f"retries_{cause}", _SUM) for cause in RETRY_CAUSES),
    ("tokens", _SUM),
    ("call_seconds_sum", _SUM),
    *((f"call_le_{i}", _SUM) for i in range(len(CALL_TIME_BUCKETS) + 1)),
    ("in_flight_peak", _MAX),
    ("in_flight", _LAST),
    ("requests_per_second_limit", _LAST),
    ("tokens_per_minute_limit", _LAST),
)
#: The column names of every row, in order.
COLUMNS: tuple[str, ...] = tuple(name for name, _ in _SPEC)
_MAX_AT = tuple(i for i, (_, kind) in enumerate(_SPEC) if kind == _MAX)
_LAST_AT = tuple(i for i, (_, kind) in enumerate(_SPEC) if kind == _LAST)
_WIDTH = len(COLUMNS)
_I = {name: i for i, name in enumerate(COLUMNS)}
_SENT, _ACCEPTED, _FAILED = _I["sent"], _I["accepted"], _I["failed_attempts"]
_RL_REQ, _RL_TOK, _RL_UNK = (
    _I["rate_limited_requests"],
    _I["rate_limited_tokens"],
    _I["rate_limited_unknown"],
)
_RETRY0 = _I["retries_rate_limited"]
_TOKENS, _CALL_SUM, _CALL0 = _I["tokens"], _I["call_seconds_sum"], _I["call_le_0"]
_PEAK, _LEVEL = _I["in_flight_peak"], _I["in_flight"]
_RPS, _TPM = _I["requests_per_second_limit"], _I["tokens_per_minute_limit"]
_CAUSE_INDEX = {cause: _RETRY0 + i for i, cause in enumerate(RETRY_CAUSES)}
_NO_LIMIT = math.nan  # a limit not known (yet): drawn as a gap, not as zero


def _merged(older: list[float], newer: list[float]) -> list[float]:
    """Two rows as one (the hot path's once-a-second cost: one pass in C, then four fixes)."""
    merged = [a + b for a, b in zip(older, newer, strict=True)]
    for i in _MAX_AT:
        merged[i] = max(older[i], newer[i])
    for i in _LAST_AT:
        merged[i] = newer[i]
    return merged


@dataclass(frozen=True, slots=True)
class ModelSeries:
    """One model's rows, oldest first, each ``widths[i]`` seconds from ``starts[i]``.

    ``starts`` are seconds since the timeline began. ``columns`` maps every name of
    :data:`COLUMNS` to its values; seconds without events are filled in (counts zero, the
    in-flight count and the limits as they were), so a row of 1 s follows a row of 1 s. The
    last row is only as wide as the part of its second that has passed.
    """

    model: str
    starts: tuple[float, ...]
    widths: tuple[float, ...]
    columns: Mapping[str, tuple[float, ...]]

    def __len__(self) -> int:
        return len(self.starts)

    def total(self, name: str) -> float:
        """The sum of a count column over the whole run."""
        return math.fsum(self.columns[name])

    def per_second(self, name: str) -> tuple[float, ...]:
        """A count column as a rate per second of each row."""
        return tuple(v / w for v, w in zip(self.columns[name], self.widths, strict=True))

    def call_time_percentile(self, q: float) -> tuple[float | None, ...]:
        """The ``q`` quantile of call times per row (None: no call answered in that row).

        Estimated from fixed buckets (:data:`CALL_TIME_BUCKETS`), interpolating inside the
        bucket as Prometheus's ``histogram_quantile`` does.
        """
        buckets = [self.columns[f"call_le_{i}"] for i in range(len(CALL_TIME_BUCKETS) + 1)]
        return tuple(_quantile([b[row] for b in buckets], q) for row in range(len(self)))


def _quantile(counts: list[float], q: float) -> float | None:
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    for i, count in enumerate(counts):
        if count and running + count >= rank:
            low = CALL_TIME_BUCKETS[i - 1] if i > 0 else 0.0
            if i >= len(CALL_TIME_BUCKETS):
                return low  # above every bound: the highest bound is what is known
            high = CALL_TIME_BUCKETS[i]
            return low + (high - low) * (rank - running) / count
        running += count
    return CALL_TIME_BUCKETS[-1]


def _fill_gaps(
    rows: tuple[tuple[float, float, tuple[float, ...]], ...],
) -> list[tuple[float, float, tuple[float, ...]]]:
    filled: list[tuple[float, float, tuple[float, ...]]] = []
    for start, width, values in rows:
        if filled:
            last_start, last_width, last = filled[-1]
            end = last_start + last_width
            if start > end + 1e-9:
                idle = [0.0] * _WIDTH
                idle[_LEVEL] = idle[_PEAK] = last[_LEVEL]
                idle[_RPS], idle[_TPM] = last[_RPS], last[_TPM]
                # One row per missing step of this width keeps the x spacing even.
                steps = max(1, round((start - end) / width))
                step = (start - end) / steps
                for k in range(steps):
                    filled.append((end + k * step, step, tuple(idle)))
        filled.append((start, width, values))
    return filled
