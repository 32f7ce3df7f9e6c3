"""Where recovery climbs back to after a new episode begins (``_limits/_target.py``), and a
return under a found limit that the server refused while taking calls (``_limits/_probe.py``).

At a call or two a second an episode holds too few taken calls for a measurement to lower the
target recovery climbs back to, so a limit that halved was climbed over again every ~17 s. A
refusal of that climb, with calls taken since the last refusal, is the evidence instead; with
nothing taken (an outage) the target must stay, or the rate never comes back after it.
"""

from __future__ import annotations

import pytest

from grok_scheduler._limits._acceptance import AcceptanceLog
from grok_scheduler._limits._episode import DimensionState, Meter
from grok_scheduler._limits._probe import refusal_of_probe
from grok_scheduler._limits._target import episode_target


def _log_with(taken: tuple[float, ...], refused: tuple[float, ...] = ()) -> AcceptanceLog:
    log = AcceptanceLog()
    for at in sorted(taken + refused):
        record = log.sent(0, at)
        if at in refused:
            log.rejected(record, "requests", 0, at)
    return log


def _climbing(rate: float, *, cut_at: float, start: float, refused_at: float) -> DimensionState:
    """Climbing back from ``start`` to ``cut_at`` after an episode whose last refusal was sent
    at ``refused_at``; a probe found the old limit (settled, holding ``held``)."""
    state = DimensionState(rate, None, 0.05)
    state.cut_at = cut_at
    state.recover_from = start
    state.last_refused_sent = refused_at
    state.settled = True
    state.held = 0.95
    return state


def test_a_climb_refused_while_the_server_took_calls_lowers_the_target() -> None:
    """Halfway from where the climb started to where it was refused, and the rate that held
    before the limit moved is no longer returned to."""
    meter = Meter(_log_with((12.0, 14.0)), None, shared=False)
    state = _climbing(0.9, cut_at=0.93, start=0.45, refused_at=10.0)
    assert episode_target(meter, "requests", state, 16.0) == pytest.approx(0.675)
    assert not state.settled
    assert state.held is None


def test_a_climb_refused_with_nothing_taken_keeps_the_target() -> None:
    """An outage refuses everything: the target stays for when it ends."""
    meter = Meter(_log_with((), refused=(12.0, 14.0)), None, shared=False)
    state = _climbing(0.9, cut_at=0.93, start=0.45, refused_at=10.0)
    assert episode_target(meter, "requests", state, 16.0) == pytest.approx(0.93)
    assert state.settled


def test_a_refusal_while_holding_or_probing_keeps_the_rate() -> None:
    """Not climbing: the probe's return (``_probe.py``) decides, not this rule."""
    meter = Meter(_log_with((12.0, 14.0)), None, shared=False)
    holding = _climbing(0.5, cut_at=0.5 / 0.98, start=0.5, refused_at=10.0)
    assert episode_target(meter, "requests", holding, 16.0) == pytest.approx(0.5)
    probing = _climbing(0.55, cut_at=0.5 / 0.98, start=0.45, refused_at=10.0)
    probing.probe_from = 0.5
    assert episode_target(meter, "requests", probing, 16.0) == pytest.approx(0.55)


def test_a_measured_episode_keeps_its_target() -> None:
    """The last episode measured what the server took: recovery climbs back to that."""
    meter = Meter(_log_with((12.0, 14.0)), None, shared=False)
    state = _climbing(0.7, cut_at=0.93, start=0.45, refused_at=10.0)
    state.best_measured = 0.95
    assert episode_target(meter, "requests", state, 16.0) == pytest.approx(0.93)


@pytest.mark.parametrize(("taken", "kept"), [((21.0, 23.0), False), ((), True)])
def test_a_refused_return_is_not_climbed_back_to_unless_in_an_outage(
    taken: tuple[float, ...], kept: bool
) -> None:
    """A return refused while the server took calls: recovery does not climb back to it (at
    0.25 rps a refused return, a cut and a refused climb came every ~37 s); in an outage the
    target stays, or the rate stays at the floor after it."""
    meter = Meter(_log_with(taken, refused=(20.0, 25.0)), None, shared=False)
    state = DimensionState(0.26, None, 0.05)
    state.cut_at = 0.26 / 0.98
    state.probe_returned_at = 20.0
    state.last_refused_sent = 25.0
    assert not refusal_of_probe(meter, state, pause=1.0)
    assert (state.cut_at is not None) is kept
    # ... and the next return stays under it (``return_rate``), unless in an outage.
    assert state.refused_return == (None if kept else pytest.approx(0.26))
