"""Settling a rate-limit header's window from a series of observations over time.

One triple can be read several ways (see ``_windows``); a series narrows them down:

- triples whose refill readings (``limit * reset / used``) agree settle on that window;
- ``remaining`` recovering by X within Y seconds (counting what the client itself got accepted
  in between) proves a refill of at least X / Y per second: the window is at most
  ``limit * Y / X``; other clients on the key only make the recovery look smaller, never bigger;
- the longest ``reset`` seen bounds the window from below (nothing takes longer than a window to
  come back);
- a reset deadline (``at + reset``) that stays put while requests are accepted marks a fixed
  window, one that moves later marks a refilling bucket.

Pure: times are the client's own, passed in; nothing here reads a clock or raises.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._windows import (
    _REFILL_RAW,
    _SNAP_LOOSE,
    _STATED,
    _TOLERANCE,
    STANDARD_WINDOWS,
    HeaderTriple,
    WindowCandidate,
    _best_first,
    _candidate,
    _fixed_candidate,
    _geometric_median,
    _non_negative,
    _positive,
    _ratio,
    _refill_candidate,
    _refill_window,
    _remaining,
    window_candidates,
)

__all__ = ["WindowObservation", "settle_window"]


@dataclass(frozen=True, slots=True)
class WindowObservation:
    """One triple at client time ``at``, with what the client got accepted since the one before."""

    at: float
    triple: HeaderTriple
    accepted_since_previous: float = 0.0


def settle_window(observations: Iterable[WindowObservation]) -> WindowCandidate | None:
    """The one window a series of observations supports, or None when no limit was seen.

    Only the trailing run with the latest limit counts: a changed limit starts a new story.
    """
    run = _latest_run(observations)
    if not run:
        return None
    limit = _positive(run[-1].triple.limit)
    if limit is None:
        return None
    stated = _positive(run[-1].triple.stated_window)
    if stated is not None:
        return _candidate(limit, stated, _STATED, "stated by the header family")
    resets = [r for o in run if (r := _non_negative(o.triple.reset)) is not None]
    floor = max(resets, default=0.0)
    ceiling, fixed_votes, refill_votes = _pair_evidence(run, limit)
    if fixed_votes > refill_votes and floor > 0:
        confidence = min(0.9, 0.6 + 0.05 * (fixed_votes - 1))
        return _fixed_candidate(limit, floor, confidence)
    estimates = [
        raw
        for o in run
        if (raw := _refill_window(limit, _remaining(o.triple.remaining, limit), o.triple.reset))
        is not None
    ]
    if estimates:
        # An unsnappable refill reading suggests a fixed window (whole count back at the reset).
        fixed = _fixed_candidate(limit, floor) if floor > 0 else None
        found = _best_first(
            c for c in (_from_estimates(limit, estimates, floor, ceiling), fixed) if c is not None
        )
        return found[0] if found else None
    if ceiling is not None:
        return _from_ceiling(limit, ceiling, floor)
    candidates = window_candidates(run[-1].triple)
    return candidates[0] if candidates else None


def _latest_run(observations: Iterable[WindowObservation]) -> list[WindowObservation]:
    try:
        valid = [o for o in observations if math.isfinite(o.at)]
    except (TypeError, AttributeError):
        return []
    valid.sort(key=lambda o: o.at)
    if not valid:
        return []
    limit = valid[-1].triple.limit
    run: list[WindowObservation] = []
    for observation in reversed(valid):
        if observation.triple.limit != limit:
            break
        run.append(observation)
    run.reverse()
    return run


def _pair_evidence(run: Sequence[WindowObservation], limit: float) -> tuple[float | None, int, int]:
    """From consecutive observations: the longest window the recoveries allow, and votes for a
    fixed window (reset deadline unmoved by accepted requests) against a refilling one."""
    ceiling: float | None = None
    fixed_votes = refill_votes = 0
    for before, after in itertools.pairwise(run):
        elapsed = after.at - before.at
        accepted = _non_negative(after.accepted_since_previous) or 0.0
        if elapsed <= 0:
            continue
        reset_before = _non_negative(before.triple.reset)
        reset_after = _non_negative(after.triple.reset)
        # Recovery proves a refill of at least X per elapsed seconds, unless the server said the
        # count would reset within that time (a fixed window's jump is not a refill rate).
        r_before = _remaining(before.triple.remaining, limit)
        r_after = _remaining(after.triple.remaining, limit)
        if (
            r_before is not None
            and r_after is not None
            and (reset_before is None or reset_before > elapsed)
        ):
            recovered = r_after - r_before + accepted
            if recovered > 0:
                bound = _positive(limit * elapsed / recovered)
                if bound is not None:
                    ceiling = bound if ceiling is None else min(ceiling, bound)
        if accepted > 0 and reset_before is not None and reset_after is not None:
            moved = (after.at + reset_after) - (before.at + reset_before)
            if abs(moved) <= _deadline_tolerance(reset_before, reset_after):
                fixed_votes += 1
            elif moved > 0:
                refill_votes += 1
    return ceiling, fixed_votes, refill_votes


def _deadline_tolerance(reset_before: float, reset_after: float) -> float:
    # Whole-second resets (X-RateLimit-Reset) jitter by up to a second; Go durations by a ms.
    if (
        min(reset_before, reset_after) >= 1
        and reset_before.is_integer()
        and reset_after.is_integer()
    ):
        return 1.0
    return 0.002 + 0.01 * max(reset_before, reset_after)


def _from_estimates(
    limit: float, estimates: Sequence[float], floor: float, ceiling: float | None
) -> WindowCandidate | None:
    candidate = _refill_candidate(limit, estimates)
    if candidate is None:
        return None
    upper = math.inf if ceiling is None else ceiling * _TOLERANCE
    if floor <= candidate.window * _TOLERANCE and candidate.window <= upper:
        return candidate
    # The snapped reading breaks a bound the series proved: keep the centre, clamped into bounds.
    center = min(max(_geometric_median(estimates), floor), upper)
    return _candidate(limit, center, _REFILL_RAW, "refill reading clamped to observed bounds")


def _from_ceiling(limit: float, ceiling: float, floor: float) -> WindowCandidate | None:
    """No refill reading: recoveries prove the window is at most ``ceiling``."""
    fitting = [w for w in STANDARD_WINDOWS if floor <= w * _TOLERANCE and w <= ceiling * _TOLERANCE]
    if fitting and _ratio(fitting[-1], ceiling) <= _SNAP_LOOSE:
        window = fitting[-1]
        reason = f"remaining recovered fast enough for a window of at most {ceiling:.6g} s"
        return _candidate(limit, window, 0.5, reason)
    # Pace at the refill the recoveries proved, the slowest rate known to be allowed.
    return _candidate(limit, max(ceiling, floor), 0.4, "the refill rate recoveries proved")
