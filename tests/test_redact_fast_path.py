"""``redact`` skips its regex scans for text with no marker: it must mask exactly as before."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler._errors import _REDACTIONS, redact


def _every_pattern(text: str) -> str:
    """The redaction without the fast path: every pattern, always."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# Pieces of every secret shape the patterns know, in odd cases and next to characters that
# IGNORECASE folds onto ASCII letters (Kelvin sign, long s, dotted/dotless i).
_PIECES = st.sampled_from(
    [
        "xai-", "XAI-", "sk-", "SK-", "Bearer ", "bEaReR\t", "BEARER", "://", "https://",
        "user:pw@", "@", "?api_key=", "&token=", "?key=", "=", "-", "_", ".", " ", "\n",
        "\u212a", "\u017f", "\u0131", "\u0130", "é", "0123456789abcdef", "ABCDEFGHIJKLMNOP",
        "req_", "5c1ced5c-bfa6-4425-956c-f988c3efa7be",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=4), max_size=12).map("".join))
def test_fast_path_masks_exactly_as_every_pattern(text: str) -> None:
    assert redact(text) == _every_pattern(text)


def test_secrets_reach_the_patterns() -> None:
    """Each secret shape holds a marker, so none is waved through by the fast path."""
    for text in (
        "key xai-0123456789abcdef",
        "sk-0123456789abcdefghij",
        "authorization: bearer abc.def",
        "https://user:secret@example.com/v1",
        "https://api.x.ai/v1?api_key=topsecret",
    ):
        assert redact(text) != text
        assert redact(text) == _every_pattern(text)


def test_a_request_id_is_returned_untouched() -> None:
    """The common case (a UUID request id) is the same string, no copy made."""
    request_id = str(uuid.uuid4())
    assert redact(request_id) is request_id
