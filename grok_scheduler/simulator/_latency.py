"""How long the simulated API takes to answer: seeded latency distributions.

The delay of one call is a base drawn from ``latency_dist`` plus ``latency_per_token`` for every
output token (visible and reasoning), capped at ``latency_max``:

* ``fixed``: the base is exactly ``latency``;
* ``uniform``: the whole delay is spread by ``1 + U(-latency_jitter, latency_jitter)`` (the
  original behaviour; with no jitter it is fixed);
* ``lognormal``: the base is ``latency * exp(latency_sigma * N(0, 1))``, so ``latency`` is the
  median and the tail is heavy: with a 5 s median and sigma 1, one call in 25 takes over 30 s,
  as reasoning models do.

Draws come from the ``random.Random`` handed in, so a seed replays the same latencies.

A streamed call takes the same delay but shows it as a server does (:func:`stream_pacing`): the
first byte after a short time to first token (``stream_ttft``, by default a quarter of the
delay and at most 0.5 s), then the chunks spread evenly over the rest. A client that learns
the time to first byte then learns a time to first token, not a whole answer's latency.
"""

from __future__ import annotations

import math
import random

from ._config import SimulatorConfig
from ._protocol import ModelCall

__all__ = ["DEFAULT_TTFT", "draw_delay", "stream_pacing"]

# The default time to first token: xAI's chat models start streaming well under a second; a
# quarter of the delay keeps very fast simulated calls fast.
DEFAULT_TTFT = 0.5


def draw_delay(config: SimulatorConfig, call: ModelCall, rng: random.Random) -> float:
    """Seconds this call takes on the server, drawn from the configured distribution."""
    per_token = config.latency_per_token * (call.completion_tokens + call.reasoning_tokens)
    dist = config.latency_dist
    if dist == "lognormal":
        base = config.latency
        if config.latency_sigma and base > 0:
            base *= math.exp(config.latency_sigma * rng.gauss(0.0, 1.0))
        delay = base + per_token
    else:
        delay = config.latency + per_token
        if dist == "uniform" and config.latency_jitter and delay > 0:
            delay *= 1.0 + rng.uniform(-config.latency_jitter, config.latency_jitter)
    return min(delay, config.latency_max)


def stream_pacing(config: SimulatorConfig, delay: float, chunks: int) -> tuple[float, float]:
    """``(first, gap)``: seconds before a stream's first chunk, then between its chunks.

    ``first + gap * (chunks - 1) == delay``: a streamed answer ends when the plain one would.
    """
    if chunks <= 1:
        return delay, 0.0
    ttft = config.stream_ttft if config.stream_ttft is not None else min(DEFAULT_TTFT, delay / 4)
    first = min(max(ttft, 0.0), delay)
    return first, (delay - first) / (chunks - 1)
