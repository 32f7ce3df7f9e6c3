"""Token estimates made before sending, learned from the usage the server reports.

A job reserves ``prompt estimate + completion allowance`` tokens. The prompt estimate starts at
four characters a token and learns the real ratio from ``usage.prompt_tokens``; the completion
allowance is the job's ``max_tokens`` until enough answers have been seen, then a high quantile of
what completions (with reasoning) really took, never above ``max_tokens``. Over- and
under-estimates are both corrected when the reservation is settled against ``total_tokens``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TokenEstimator", "prompt_characters"]

_DEFAULT_CHARS_PER_TOKEN = 4.0
_PER_MESSAGE_OVERHEAD = 4
_SAMPLES = 256
_MIN_SAMPLES = 20
# Answers vary; reserving the 95th percentile plus a margin keeps under-commitment rare.
_QUANTILE = 0.95
_MARGIN = 1.2


def prompt_characters(prompt: str | Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(characters of text, number of messages) in a prompt or message list."""
    if isinstance(prompt, str):
        return len(prompt), 1
    characters = 0
    for message in prompt:
        content = message.get("content")
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    text = part.get("text")
                    if isinstance(text, str):
                        characters += len(text)
    return characters, len(prompt)


class TokenEstimator:
    """Learns characters-per-token and completion sizes from observed usage."""

    __slots__ = (
        "_chars",
        "_completions",
        "_default_completion",
        "_learned",
        "_prompt_tokens",
        "_stale",
    )

    def __init__(self, *, default_completion_tokens: int = 1024) -> None:
        self._default_completion = default_completion_tokens
        self._chars = 0
        self._prompt_tokens = 0
        self._completions: deque[int] = deque(maxlen=_SAMPLES)
        self._learned: int | None = None
        self._stale = 0

    @property
    def chars_per_token(self) -> float:
        """The learned ratio (the default until a few thousand prompt tokens were seen)."""
        if self._prompt_tokens < 1000:
            return _DEFAULT_CHARS_PER_TOKEN
        return max(0.5, self._chars / self._prompt_tokens)

    def prompt_tokens(self, characters: int, messages: int) -> int:
        """Estimated prompt tokens for text of ``characters`` in ``messages`` messages."""
        return math.ceil(characters / self.chars_per_token) + _PER_MESSAGE_OVERHEAD * messages

    def completion_allowance(self, max_tokens: int | None) -> int:
        """Tokens to reserve for the answer (completion plus reasoning)."""
        learned = self._learned_allowance()
        if learned is None:
            return max_tokens if max_tokens is not None else self._default_completion
        return learned if max_tokens is None else min(max_tokens, learned)

    def _learned_allowance(self) -> int | None:
        if len(self._completions) < _MIN_SAMPLES:
            return None
        # Sorting on every job would cost more than the call it schedules; refresh now and then.
        if self._learned is None or self._stale >= 32:
            ordered = sorted(self._completions)
            self._learned = math.ceil(ordered[int(_QUANTILE * (len(ordered) - 1))] * _MARGIN) + 1
            self._stale = 0
        return self._learned

    def estimate(self, characters: int, messages: int, max_tokens: int | None) -> int:
        """Tokens a job should reserve."""
        return self.prompt_tokens(characters, messages) + self.completion_allowance(max_tokens)

    def observe(self, characters: int, prompt_tokens: int, answer_tokens: int) -> None:
        """Learn from one answered call (answer = completion + reasoning)."""
        if prompt_tokens > 0 and characters > 0:
            self._chars += characters
            self._prompt_tokens += prompt_tokens
        if answer_tokens >= 0:
            self._completions.append(answer_tokens)
            self._stale += 1

    def __repr__(self) -> str:
        return (
            f"TokenEstimator(chars_per_token={self.chars_per_token:.2f}, "
            f"samples={len(self._completions)})"
        )
