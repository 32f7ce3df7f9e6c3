"""Request bodies: the JSON a job becomes for ``chat/completions`` or ``responses``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._models import Endpoint

__all__ = ["request_body"]


def request_body(
    *,
    endpoint: Endpoint,
    model: str,
    prompt: str | list[dict[str, Any]],
    max_tokens: int | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON body of one call; ``options`` are sent as given and win over the fields above."""
    body: dict[str, Any] = {"model": model}
    if endpoint is Endpoint.RESPONSES:
        # The Responses API takes a string or a list of input items under one name.
        body["input"] = prompt
        if max_tokens is not None:
            body["max_output_tokens"] = max_tokens
    else:
        body["messages"] = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        )
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
    if options:
        body.update(options)
    return body
