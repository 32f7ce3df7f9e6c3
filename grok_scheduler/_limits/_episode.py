"""The adaptive state of one limit (requests per second or tokens per minute).

A congestion *episode* runs from the send time of the first refused call until a quiet period
without 429s. Within it, the controller measures what the server still accepted and cuts to
it; after it, recovery climbs back to ``cut_at`` and probing goes beyond. This module holds
that state; ``_adaptive.py`` decides.
"""

from __future__ import annotations

import math

__all__ = ["DimensionState"]


class DimensionState:
    """The adaptive state of one limit: its rate, ceiling, and the congestion episode."""

    __slots__ = (
        "applied",
        "best_measured",
        "blind_cuts",
        "ceiling",
        "configured",
        "cut_at",
        "episode_rate",
        "episode_start",
        "floor",
        "last_429",
        "last_refused_sent",
        "last_step",
        "learned",
        "measured_in_episode",
        "rate",
        "recover_from",
        "stated",
    )

    def __init__(self, rate: float | None, ceiling: float | None, floor: float) -> None:
        self.rate = rate  # None: unlimited (nothing known yet)
        self.applied = rate  # what the limiter was last given
        self.configured = ceiling
        self.ceiling = ceiling
        self.floor = floor
        self.last_step = -math.inf
        self.last_429 = -math.inf
        self.episode_start = math.inf  # send time of the first refused call of the episode
        self.last_refused_sent = -math.inf  # send time of the latest refused call
        self.episode_rate: float | None = None  # the rate when the episode began
        self.best_measured = 0.0  # the most the server accepted in a measured window of it
        self.blind_cuts = 0  # cuts made in this episode before anything could be measured
        self.learned: float | None = None  # the last limit measured in any episode
        self.measured_in_episode = False
        self.cut_at: float | None = None  # where recovery climbs back to after an episode
        self.recover_from: float | None = None  # the rate recovery started from
        self.stated = False  # the server stated this limit (a body or headers)

    def in_episode(self, now: float, quiet: float) -> bool:
        return now - self.last_429 <= quiet
