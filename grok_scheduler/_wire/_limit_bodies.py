"""Reading the limits a rate-limit 429 body states: model, dimension, window, actual and limit.

xAI sends no rate-limit headers, but its rate-limit 429 names the model and the limit that was
hit in the ``error`` text (docs: xai-api.md, "429 bodies state the limit")::

    Too many requests for team … and model grok-4.3. Your team's rate limit is — Requests per
    Second (actual/limit): 2/2, Requests per Minute (actual/limit): 1922/60.

Captures differ in the dash (em dash, en dash, hyphen), in whether "Your team's rate limit is"
is there, and in the trailing period, so each limit is found by its own label
("<Requests|Tokens> per <Second|Minute|Hour|Day> … <actual>/<limit>") wherever it sits; the
glue around it is never relied on. A stated limit of 0 (``0/0``) means the model is not
available to the team at all: :attr:`StatedLimits.model_unavailable` lets the caller raise a
fatal error instead of waiting. Messages about credits, spending limits or a free usage quota
share the 429 and its ``code`` but are billing exhaustion, so they are never read as a rate
limit. Everything here is pure and never raises, whatever the input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["LimitUnit", "StatedLimit", "StatedLimits", "parse_limit_body"]

LimitUnit = Literal["requests", "tokens"]

# Longer messages are not 429 bodies; the cap bounds the regex work on hostile input.
_MAX_CHARS = 4000

_WINDOW_SECONDS = {
    "second": 1.0,
    "sec": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "hour": 3600.0,
    "hr": 3600.0,
    "day": 86400.0,
}
_ABBREVIATION_WINDOW = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# ASCII digits only: float() would also accept other scripts' digits, which no server writes.
# Thousands separators are commas between groups of three; "2/2, Requests" stays two numbers
# because a separator must be followed by exactly three digits and no fourth.
_NUMBER = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+(?:\.[0-9]+)?"
_LIMIT = re.compile(
    r"\b(?:(?P<unit>requests?|tokens?)\s+per\s+(?P<window>second|sec|minute|min|hour|hr|day)s?"
    r"|(?P<abbr>[rt])p(?P<abbr_window>[smhd]))\b"
    # An optional "(actual/limit)" or similar aside, then an optional colon.
    r"\s*(?:\([^()]{0,40}\))?\s*:?\s*"
    rf"(?P<actual>{_NUMBER})\s*/\s*(?P<limit>{_NUMBER})",
    re.IGNORECASE,
)
_HIT = re.compile(r"too\s+many\s+(?P<unit>requests|tokens)\b", re.IGNORECASE)
_MODEL = re.compile(
    r"\bmodel\s*[:=]?\s*[\"'`]?(?P<name>[A-Za-z0-9][A-Za-z0-9._:/-]{0,99})", re.IGNORECASE
)
# Billing exhaustion shares the 429 and the "resource-exhausted" code; the wording tells it apart.
# A bare "quota exceeded" is left out: gateways say it of per-minute limits too, and a body that
# states a per-window limit is one of those (as _classify decides it).
_BILLING = re.compile(
    r"\bcredits?\b|spending[\s_-]?limit|\bbilling\b|insufficient[\s_-]?(?:quota|funds|balance)"
    r"|usage\s+quota|exceeded\s+your\s+(?:current\s+)?quota|payment\s+required|out\s+of\s+funds",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class StatedLimit:
    """One limit as a 429 body states it: ``<unit> per <window> (actual/limit): a/b``."""

    unit: LimitUnit
    window: float
    """Seconds the limit is counted over: 1, 60, 3600 or 86400."""
    actual: float
    """What the rejected request would have made the count (it can be far above the limit)."""
    limit: float
    """The team's limit for this model in this window; 0 means the model is not available."""

    @property
    def per_second(self) -> float | None:
        """The limit as a rate per second, or None for a zero limit."""
        rate = self.limit / self.window
        return rate if 0.0 < rate < math.inf else None

    @property
    def reached(self) -> bool:
        """True when the count met or passed the limit: this limit is one that said no."""
        return self.actual >= self.limit


@dataclass(frozen=True, slots=True)
class StatedLimits:
    """Everything a rate-limit 429 body states about the limit that was hit."""

    model: str | None
    """The model the limits belong to (each model has its own), None when not named."""
    limits: tuple[StatedLimit, ...]
    """Every limit stated, in the order written (may be empty when only the dimension is said)."""
    hit: LimitUnit | None
    """The dimension that said no: from "Too many tokens/requests", else from the reached limits."""

    @property
    def model_unavailable(self) -> bool:
        """A zero limit (``0/0``): the team may not use this model at all; waiting cannot help."""
        return any(limit.limit == 0 for limit in self.limits)

    def limit_for(self, unit: LimitUnit, window: float) -> StatedLimit | None:
        """The stated limit of one unit and window, or None when the body did not state it."""
        return next((s for s in self.limits if s.unit == unit and s.window == window), None)


def parse_limit_body(message: str) -> StatedLimits | None:
    """The limits stated by the ``error`` text of a 429 body, or None when it states none.

    None too for billing exhaustion (credits, spending limit, "Free usage quota exceeded"),
    even when the text also quotes numbers: that is not a limit to wait out. Never raises.
    """
    if not isinstance(message, str):
        return None
    text = message[:_MAX_CHARS]
    if _BILLING.search(text):
        return None
    limits = tuple(_limits(text))
    model = _model(text)
    said = _HIT.search(text)
    # Without numbers, only xAI's "Too many tokens for team … and model X" states anything: a
    # bare "Too Many Requests" is the HTTP reason phrase, and "model X is at capacity" is load.
    if not limits and (said is None or model is None):
        return None
    return StatedLimits(model=model, limits=limits, hit=_hit(said, limits))


def _limits(text: str) -> list[StatedLimit]:
    found: list[StatedLimit] = []
    for match in _LIMIT.finditer(text):
        if match.group("abbr"):
            unit: LimitUnit = "requests" if match.group("abbr").lower() == "r" else "tokens"
            window = _ABBREVIATION_WINDOW[match.group("abbr_window").lower()]
        else:
            unit = "tokens" if match.group("unit").lower().startswith("token") else "requests"
            window = _WINDOW_SECONDS[match.group("window").lower()]
        actual = _number(match.group("actual"))
        limit = _number(match.group("limit"))
        if actual is not None and limit is not None:
            found.append(StatedLimit(unit=unit, window=window, actual=actual, limit=limit))
    return found


def _number(text: str) -> float | None:
    # A few hundred digits overflow to inf: no limit is that large, so the entry is dropped.
    value = float(text.replace(",", ""))
    return value if math.isfinite(value) else None


def _hit(match: re.Match[str] | None, limits: tuple[StatedLimit, ...]) -> LimitUnit | None:
    if match is not None:
        return "tokens" if match.group("unit").lower() == "tokens" else "requests"
    # Without the phrase, the dimension is the one whose stated limits said no, if only one did.
    units = {limit.unit for limit in limits if limit.reached}
    return units.pop() if len(units) == 1 else None


def _model(text: str) -> str | None:
    for match in _MODEL.finditer(text):
        # The sentence's own full stop is not part of the name ("model grok-4.5.").
        name = match.group("name").rstrip(".:/-")
        # Real model names carry a digit or a hyphen; this skips prose like "model is at capacity".
        if any(char.isdigit() or char == "-" for char in name):
            return name
    return None
