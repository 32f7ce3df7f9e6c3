"""The IETF ``RateLimit-Policy`` / ``RateLimit`` structured fields, read per dimension.

draft-ietf-httpapi-ratelimit-headers-11 states quotas as RFC 9651 structured-field lists:
``RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400`` and
``RateLimit: "burst";r=50;t=30``. This module reads both leniently (one odd member from a
gateway must not hide the rest) and splits them into requests and tokens. Pure; never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._header_values import non_negative, number, positive

__all__ = ["NONE_DIM", "Dim", "ietf_structured", "sf_list"]

# (limit, window, remaining, reset); any may be None.
Dim = tuple[float | None, float | None, float | None, float | None]
NONE_DIM: Dim = (None, None, None, None)

# A structured-field item: its bare value (unquoted) and its parameters.
_Item = tuple[str, dict[str, str]]
_Policy = tuple[str, float, float | None]

# Quota units that are neither requests nor tokens: such a policy says nothing about pacing.
_OTHER_UNITS = frozenset({"content-bytes", "concurrent-requests", "bytes"})
_SF_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def ietf_structured(found: Mapping[str, str]) -> tuple[Dim, Dim]:
    """Requests and tokens as said by ``RateLimit-Policy`` and ``RateLimit``."""
    policy_text = found.get("ratelimit-policy")
    current_text = found.get("ratelimit")
    if policy_text is None and current_text is None:
        return NONE_DIM, NONE_DIM
    request_policies: list[_Policy] = []
    token_policies: list[_Policy] = []
    for name, params in sf_list(policy_text) if policy_text is not None else []:
        # Early drafts wrote the quota as the bare item itself: ``100;w=60``.
        quota = positive(number(params.get("q", name)))
        if quota is None:
            continue
        window = positive(number(params.get("w", "")))
        unit = (params.get("qu") or params.get("u") or "").lower()
        if "token" in unit or "token" in name.lower():
            token_policies.append((name, quota, window))
        elif unit not in _OTHER_UNITS:
            request_policies.append((name, quota, window))
    current = sf_list(current_text) if current_text is not None else []
    token_names = {name for name, _, _ in token_policies}
    request_current = [item for item in current if not _is_token_item(item[0], token_names)]
    token_current = [item for item in current if _is_token_item(item[0], token_names)]
    return (
        _ietf_dimension(request_policies, request_current, fallback_first=True),
        _ietf_dimension(token_policies, token_current, fallback_first=False),
    )


def _is_token_item(name: str, token_names: set[str]) -> bool:
    return name in token_names or "token" in name.lower()


def _ietf_dimension(policies: list[_Policy], current: list[_Item], *, fallback_first: bool) -> Dim:
    limit = window = None
    policy_name: str | None = None
    if policies:
        # The shortest window binds pacing hardest; a policy without a window sorts last.
        policy_name, limit, window = min(
            policies, key=lambda p: (p[2] is None, p[2] if p[2] is not None else 0.0)
        )
    item = next((it for it in current if it[0] == policy_name), None)
    if item is None and current and (fallback_first or policy_name is None):
        item = current[0]
    if item is None:
        return limit, window, None, None
    params = item[1]
    remaining = non_negative(number(params["r"])) if "r" in params else None
    reset = non_negative(number(params["t"])) if "t" in params else None
    return limit, window, remaining, reset


def sf_list(text: str) -> list[_Item]:
    """A lenient RFC 9651 list: each item's bare value (unquoted) and its parameters.

    Malformed members are skipped rather than failing the whole field, because one odd item
    from a gateway should not hide the rest.
    """
    items: list[_Item] = []
    for member in _split(text, ","):
        parts = _split(member, ";")
        name = _sf_value(parts[0].strip())
        if not name:
            continue
        params: dict[str, str] = {}
        for part in parts[1:]:
            key, equals, value = part.partition("=")
            key = key.strip().lower()
            if key and equals:
                params.setdefault(key, _sf_value(value.strip()))
        items.append((name, params))
    return items


def _sf_value(text: str) -> str:
    """A bare item as text: strings unquoted and unescaped, anything else as written."""
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            return ""
        inner = text[1:-1]
        return _SF_ESCAPE.sub(r"\1", inner) if "\\" in inner else inner
    return text


def _split(text: str, separator: str) -> list[str]:
    """Split on a separator outside double-quoted strings."""
    if '"' not in text:
        return text.split(separator)
    parts: list[str] = []
    start = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        elif char == separator and not in_string:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts
