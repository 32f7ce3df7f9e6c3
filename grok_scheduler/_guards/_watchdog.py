"""The hang watchdog's bounds: how long a stream may stay silent, learned per model.

A stream says early whether the server is alive, so a hung call is judged by silence, not by
the length of the whole answer: the time to the first byte, and then the longest gap between
chunks. Each bound is a high percentile of what this model's complete streams showed, times
headroom, never below a floor; so it holds at 50 ms latencies (the floor: cut within seconds)
and at 60 s ones (the learned time: never cut a slow but healthy model). Before a few streams
were seen a generous prior holds, and each attempt of a job that was cut for silence doubles the
next attempt's bounds, so a call that really is slower gets its time.
"""

from __future__ import annotations

from collections import deque

__all__ = ["StreamWatch"]

_WINDOW = 200
_MIN_SAMPLES = 3
_MAX_DOUBLINGS = 8


def _quantile(samples: deque[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class StreamWatch:
    """Learns one model's time to first byte and longest gap; proposes the silence bounds."""

    __slots__ = (
        "_first_byte",
        "_first_byte_floor",
        "_gap_floor",
        "_gaps",
        "_headroom",
        "_maximum",
        "_prior",
        "_quantile",
    )

    def __init__(
        self,
        *,
        first_byte_floor: float = 2.0,
        gap_floor: float = 2.0,
        headroom: float = 2.0,
        quantile: float = 0.99,
        prior: float = 30.0,
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

    def observe(self, first_byte: float, longest_gap: float) -> None:
        """Record one complete stream: seconds to its first byte and its longest silence."""
        if first_byte >= 0:
            self._first_byte.append(first_byte)
        if longest_gap >= 0:
            self._gaps.append(longest_gap)

    def first_byte_limit(self, *, cut_before: int = 0) -> float:
        """Seconds a call may take to send its first byte (``cut_before``: earlier cuts)."""
        return self._bound(self._first_byte, self._first_byte_floor, cut_before)

    def gap_limit(self, *, cut_before: int = 0) -> float:
        """Seconds a stream may stay silent between chunks."""
        return self._bound(self._gaps, self._gap_floor, cut_before)

    def _bound(self, samples: deque[float], floor: float, cut_before: int) -> float:
        if len(samples) < _MIN_SAMPLES:
            bound = max(self._prior, floor)
        else:
            bound = max(floor, self._headroom * _quantile(samples, self._quantile))
        bound *= 2.0 ** min(max(cut_before, 0), _MAX_DOUBLINGS)
        return min(bound, self._maximum)

    def __repr__(self) -> str:
        return (
            f"StreamWatch(samples={len(self._first_byte)}, "
            f"first_byte_limit={self.first_byte_limit():.2f}s, gap_limit={self.gap_limit():.2f}s)"
        )
