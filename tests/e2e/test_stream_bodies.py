"""stream_on_wire assembles the very body a plain call returns: compared as JSON, field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grok_scheduler import Endpoint, Result, RetryPolicy, Scheduler
from grok_scheduler.simulator import Simulator, SimulatorConfig

KEY = "xai-bodyTESTkey0123456789abcdef000"
PROMPT = "tell me about the sea and the sky today"


def _scheduler(sim: Simulator, *, stream_on_wire: bool) -> Scheduler:
    return Scheduler(
        api_key=KEY,
        base_url=sim.base_url,
        model="grok-4.3",
        retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        stream_on_wire=stream_on_wire,
    )


def _per_call_fields_blanked(body: Any) -> Any:
    """The body with what differs between two calls of one prompt (ids, clock) blanked."""

    def blank(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ("*" if k in ("id", "created", "created_at", "completed_at") else blank(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [blank(v) for v in node]
        return node

    return blank(body)


async def _both(endpoint: Endpoint, max_tokens: int, reasoning: int) -> tuple[Result, Result]:
    config = SimulatorConfig(api_key=KEY, reasoning_tokens=reasoning)
    async with Simulator(config) as sim:
        async with _scheduler(sim, stream_on_wire=False) as plain:
            expected = await plain.submit(PROMPT, max_tokens=max_tokens, endpoint=endpoint)
        async with _scheduler(sim, stream_on_wire=True) as wired:
            streamed = await wired.submit(PROMPT, max_tokens=max_tokens, endpoint=endpoint)
    return expected, streamed


@pytest.mark.parametrize("endpoint", [Endpoint.CHAT_COMPLETIONS, Endpoint.RESPONSES])
@pytest.mark.parametrize(("max_tokens", "reasoning"), [(64, 0), (3, 0), (64, 8)])
async def test_the_assembled_body_is_the_plain_body(
    endpoint: Endpoint, max_tokens: int, reasoning: int
) -> None:
    """Body and raw body parse to the plain answer's JSON (refusal, fingerprint, usage too)."""
    expected, streamed = await _both(endpoint, max_tokens, reasoning)
    plain_json = _per_call_fields_blanked(json.loads(expected.raw_body))
    assert _per_call_fields_blanked(json.loads(streamed.raw_body)) == plain_json
    assert _per_call_fields_blanked(dict(streamed.body)) == _per_call_fields_blanked(
        dict(expected.body)
    )
    if endpoint is Endpoint.CHAT_COMPLETIONS:
        assert "refusal" in streamed.body["choices"][0]["message"]
