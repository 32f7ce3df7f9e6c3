"""What a rate-limited request is told: the text of a 429 body.

``plain`` is the simulator's original wording. ``xai`` is what xAI sends (captured traffic,
2026), naming the team, the model and every limit that refused the request::

    Too many requests for team <id> and model <m>. Your team's rate limit is \u2014 Requests per
    Second (actual/limit): 3/2, Requests per Minute (actual/limit): 61/60.
    Too many tokens for team <id> and model <m>. Your team's rate limit is \u2014 Tokens per
    Minute (actual/limit): 65605/16000.

The dash is an em dash in some captures and a hyphen in others, and "Your team's rate limit
is" is sometimes absent (then the limits follow the first sentence directly): both are options.
A model whose limits are 0/0 is not available to the team; that body is sent in every mode.
"""

from __future__ import annotations

from ._headers import number
from ._limits import Exceeded, Rejection

_LABELS = {
    ("requests", "second"): "Requests per Second",
    ("requests", "minute"): "Requests per Minute",
    ("tokens", "minute"): "Tokens per Minute",
}


def plain_message(rejection: Rejection) -> str:
    """The original wording: which dimension, the limit, and the reservation for tokens."""
    first = rejection.exceeded[0] if rejection.exceeded else None
    limit = first.limit if first is not None else 0.0
    if rejection.dimension == "requests":
        if first is not None and first.window == "minute":
            return (
                f"Rate limit exceeded: requests per minute. Your team's limit is {limit:g} "
                "requests per minute; please slow down."
            )
        return (
            f"Rate limit exceeded: requests per second. Your team's limit is {limit:g} "
            "requests per second; please slow down."
        )
    return (
        f"Rate limit exceeded: tokens per minute. Your team's limit is {limit:g} "
        f"tokens per minute; this request reserves {rejection.reserved_tokens} tokens."
    )


def xai_message(
    exceeded: tuple[Exceeded, ...],
    *,
    team_id: str,
    model: str,
    dash: str = "\u2014",
    preamble: bool = True,
) -> str:
    """xAI's limit-stating text for the limits a request ran into (requests first)."""
    noun = "requests" if any(e.dimension == "requests" for e in exceeded) else "tokens"
    stated = ", ".join(
        f"{_LABELS[(e.dimension, e.window)]} (actual/limit): {number(e.actual)}/{number(e.limit)}"
        for e in exceeded
    )
    lead = f"Your team's rate limit is {dash} " if preamble else ""
    return f"Too many {noun} for team {team_id} and model {model}. {lead}{stated}."


def unavailable_message(
    *, team_id: str, model: str, dash: str = "\u2014", preamble: bool = True
) -> str:
    """The 0/0 text: the model exists but the team may not use it (never worth waiting)."""
    zero = Exceeded("requests", "minute", 0.0, 0.0)
    return xai_message((zero,), team_id=team_id, model=model, dash=dash, preamble=preamble)
