"""What travels between a process and the scripts: its report, and the script's reply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .._limits._base import RateLimitHeaders, resync

__all__ = ["Change", "Reply", "Report", "change_of"]

Change = Literal["set", "cut", "probe"]
"""How Redis applies a process's new limits (``_lua.py``): as given; never above the shared
ones (a cut: another process may have cut further meanwhile); or only from the process leading
the probing (a probe upward)."""

# The reasons the rate controller gives (``_limits/_adaptive.py``); any other reason (a stated
# limit, the user's own call) is applied as given.
PROBING_REASON = "probing up"
_CUT_REASONS = ("first 429", "429 on ")
# When several changes merge into one report, the weightiest kind describes it.
_WEIGHT: dict[Change, int] = {"probe": 0, "cut": 1, "set": 2}


def change_of(reason: str) -> Change:
    """The kind of a change of limits, from the reason its maker gave."""
    if reason == PROBING_REASON:
        return "probe"
    return "cut" if reason.startswith(_CUT_REASONS) else "set"


def _arg(value: float | None) -> str:
    return "" if value is None else repr(float(value))


@dataclass(slots=True)
class Report:
    """What this process has to tell Redis; merged until sent (mutable on purpose)."""

    give_requests: float = 0.0
    give_tokens: float = 0.0
    limits: tuple[float | None, float | None, str] | None = None
    change: Change = "set"  # how Redis applies ``limits``
    clamp_requests: float | None = None
    clamp_tokens: float | None = None
    pause_at: float | None = None  # in the event loop's time
    pause_reason: str = ""

    @property
    def urgent(self) -> bool:
        """Other processes must learn this at once (limits and pauses)."""
        return self.limits is not None or self.pause_at is not None

    @property
    def empty(self) -> bool:
        """Nothing to tell."""
        return (
            not self.urgent
            and self.give_requests == 0.0
            and self.give_tokens == 0.0
            and self.clamp_requests is None
            and self.clamp_tokens is None
        )

    def set_limits(self, rps: float | None, tpm: float | None, reason: str) -> None:
        """New limits; merged with unsent ones, the weightiest kind of change describes both
        (a cut then the probe from it is sent as a cut: its maker leads the probing)."""
        change = change_of(reason)
        if self.limits is not None and _WEIGHT[self.change] > _WEIGHT[change]:
            change = self.change
        self.limits, self.change = (rps, tpm, reason), change

    def sync(self, headers: RateLimitHeaders, rps: float | None, tpm: float | None) -> float | None:
        """The server's remaining counts (:func:`resync`): each dimension's clamp goes in the
        report; returns the pause that none remaining calls for (None: no pause)."""
        pause = None
        for dimension, remaining, reset, known in (
            ("requests", headers.requests_remaining, headers.requests_reset, rps),
            ("tokens", headers.tokens_remaining, headers.tokens_reset, tpm),
        ):
            rule = resync(remaining, reset, rate_known=known is not None)
            if rule.pause is not None:
                pause = rule.pause if pause is None else max(pause, rule.pause)
            elif rule.clamp is not None and dimension == "requests":
                self.clamp_requests = rule.clamp
            elif rule.clamp is not None:
                self.clamp_tokens = rule.clamp
        return pause

    def keep_knowledge(self, other: Report) -> None:
        """After a failed send: keep what it learned (idempotent), drop credit (it may be in)."""
        if self.limits is None:
            self.limits, self.change = other.limits, other.change
        if other.pause_at is not None and (self.pause_at is None or other.pause_at > self.pause_at):
            self.pause_at, self.pause_reason = other.pause_at, other.pause_reason

    def args(self, loop_now: float) -> list[str]:
        """The script arguments 15 to 24 (see ``_lua.py``); a pause becomes seconds from now."""
        rps, tpm, reason = self.limits if self.limits is not None else (None, None, "")
        pause = None if self.pause_at is None else max(0.0, self.pause_at - loop_now)
        return [
            repr(self.give_requests),
            repr(self.give_tokens),
            "" if self.limits is None else _arg(rps or 0.0),
            "" if self.limits is None else _arg(tpm or 0.0),
            reason,
            _arg(self.clamp_requests),
            _arg(self.clamp_tokens),
            _arg(pause),
            self.pause_reason,
            self.change,
        ]


@dataclass(frozen=True, slots=True)
class Reply:
    """A script's answer: the decision (for ACQUIRE) and the shared state after it.

    ``requests_per_second`` and ``tokens_per_minute`` are the limits in force (the shared ones
    under the fleet's lowest ceiling); ``shared`` is what is stored as the shared limits and why,
    which this process uses to seed the key again should it be lost.
    """

    status: str
    wait: float
    requests_per_second: float | None
    tokens_per_minute: float | None
    paused_for: float
    requests_level: float | None
    tokens_level: float | None
    reason: str
    shared: tuple[float, float, str]
    led_elsewhere: float = 0.0  # seconds another process still leads the probing

    @classmethod
    def parse(cls, raw: Any) -> Reply:
        """Decode the script's list of strings."""
        status, wait, rps, tpm, paused, rl, tl, why, shared_rps, shared_tpm, src, led = (
            str(x) for x in raw
        )
        return cls(
            status=status,
            wait=float(wait),
            requests_per_second=float(rps) or None,
            tokens_per_minute=float(tpm) or None,
            paused_for=float(paused),
            requests_level=float(rl) if rl else None,
            tokens_level=float(tl) if tl else None,
            reason=why,
            shared=(float(shared_rps), float(shared_tpm), src),
            led_elsewhere=float(led),
        )
