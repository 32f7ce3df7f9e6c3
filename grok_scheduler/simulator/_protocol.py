"""What the simulated xAI API reads and writes: request parsing, token counting, bodies.

Token counting is deterministic so tests can predict it exactly:

* a text costs ``ceil(len(text) / 4)`` tokens (``count_text_tokens``);
* a prompt costs that for every message's text plus ``MESSAGE_OVERHEAD_TOKENS`` (3) per
  message; ``instructions`` of the Responses API count as one more message;
* chat: ``completion_tokens = min(max_tokens, config.completion_tokens)`` and
  ``reasoning_tokens = config.reasoning_tokens``; reasoning is *not* inside
  ``completion_tokens`` but is inside ``total_tokens``, as on xAI;
* responses: ``max_output_tokens`` includes reasoning (reasoning is paid first), and
  ``output_tokens`` includes reasoning as in the OpenAI Responses format.

The answer text is ``"Simulated answer to: <first 8 words of the last user message>"`` so that a
test can match results to prompts.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

MESSAGE_OVERHEAD_TOKENS = 3
CHARS_PER_TOKEN = 4
ANSWER_PREFIX = "Simulated answer to: "
ANSWER_WORDS = 8
PROMPT_TICKS_PER_TOKEN = 2_000  # $0.20 per million tokens; 1 USD = 10**10 ticks
CACHED_TICKS_PER_TOKEN = 500
OUTPUT_TICKS_PER_TOKEN = 5_000  # $0.50 per million tokens, reasoning included

INVALID_ARGUMENT = "Client specified an invalid argument"
NOT_FOUND = "Some requested entity was not found"
EXHAUSTED = "Some resource has been exhausted"
INTERNAL = "Internal error"
UNAVAILABLE = "The service is currently unavailable"


class InvalidRequest(Exception):
    """A request the API refuses with a 400 (or another fatal status)."""

    def __init__(self, message: str, *, status: int = 400, code: str = INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One parsed chat or responses request, with its token bill decided up front."""

    model: str
    prompt_tokens: int
    completion_tokens: int  # visible answer tokens
    reasoning_tokens: int
    reserved_tokens: int  # what the token bucket is charged at admission
    capped: bool  # the answer was cut short by max_tokens / max_output_tokens
    stream: bool
    topic: str  # first words of the last user message

    @property
    def total_tokens(self) -> int:
        """Prompt, completion and reasoning tokens: what the rate limit finally counts."""
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens

    @property
    def answer(self) -> str:
        """The deterministic answer text."""
        return ANSWER_PREFIX + self.topic if self.topic else "Simulated answer."

    @property
    def cost_in_usd_ticks(self) -> int:
        """The simulated price of the call in 10^-10 USD."""
        output = self.completion_tokens + self.reasoning_tokens
        return self.prompt_tokens * PROMPT_TICKS_PER_TOKEN + output * OUTPUT_TICKS_PER_TOKEN


def error_body(code: str | None, message: str) -> bytes:
    """xAI's flat error body: ``{"code": ..., "error": ...}`` (only ``error`` when no code)."""
    body = {"code": code, "error": message} if code is not None else {"error": message}
    return json.dumps(body).encode()


def mask_key(key: str) -> str:
    """Show a key the way xAI does in errors (``xa***b2``); short keys are fully hidden."""
    return f"{key[:2]}***{key[-2:]}" if len(key) >= 8 else "***"


def count_text_tokens(text: str) -> int:
    """Tokens of one text: a quarter of its characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    if content is None:
        return ""
    raise InvalidRequest("content must be a string or a list of content parts")


def _positive_int(payload: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{name} must be a positive integer")
        return value
    return None


def _common(payload: object, model_names: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required and must be a non-empty string")
    if model_names and model not in model_names:
        raise InvalidRequest(
            f"The model {model} does not exist or your team does not have access to it.",
            status=404,
            code=NOT_FOUND,
        )
    temperature = payload.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise InvalidRequest("temperature must be a number between 0 and 2")
    stream = payload.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream must be a boolean")
    return payload, model


def _prompt(messages: list[tuple[str, str]], max_prompt_tokens: int) -> tuple[int, str]:
    tokens = sum(count_text_tokens(text) + MESSAGE_OVERHEAD_TOKENS for _, text in messages)
    if tokens > max_prompt_tokens:
        raise InvalidRequest(
            f"This model's maximum prompt length is {max_prompt_tokens} "
            f"but the request contains {tokens} tokens."
        )
    users = [text for role, text in messages if role == "user"] or [t for _, t in messages]
    topic = " ".join(users[-1].split()[:ANSWER_WORDS]) if users else ""
    return tokens, topic


def parse_chat(
    payload: object,
    *,
    completion_tokens: int,
    reasoning_tokens: int,
    model_names: tuple[str, ...],
    max_prompt_tokens: int,
) -> ModelCall:
    """Validate a ``/v1/chat/completions`` body and decide its token bill."""
    body, model = _common(payload, model_names)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: field required and must be a non-empty list")
    messages: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise InvalidRequest("each message must be an object with a string role")
        messages.append((item["role"], _content_text(item.get("content"))))
    prompt_tokens, topic = _prompt(messages, max_prompt_tokens)
    cap = _positive_int(body, "max_completion_tokens", "max_tokens")
    visible = completion_tokens if cap is None else min(cap, completion_tokens)
    reserve = prompt_tokens + (visible if cap is None else cap) + reasoning_tokens
    return ModelCall(
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=visible,
        reasoning_tokens=reasoning_tokens,
        reserved_tokens=reserve,
        capped=visible < completion_tokens,
        stream=bool(body.get("stream")),
        topic=topic,
    )


def parse_responses(
    payload: object,
    *,
    completion_tokens: int,
    reasoning_tokens: int,
    model_names: tuple[str, ...],
    max_prompt_tokens: int,
) -> ModelCall:
    """Validate a ``/v1/responses`` body and decide its token bill."""
    body, model = _common(payload, model_names)
    raw = body.get("input")
    messages: list[tuple[str, str]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("instructions must be a string")
        messages.append(("system", instructions))
    if isinstance(raw, str):
        messages.append(("user", raw))
    elif isinstance(raw, list) and raw:
        for item in raw:
            if not isinstance(item, dict):
                raise InvalidRequest("each input item must be an object")
            text = _content_text(item.get("content", item.get("text")))
            messages.append((str(item.get("role", "user")), text))
    else:
        raise InvalidRequest("input: field required and must be a string or a non-empty list")
    prompt_tokens, topic = _prompt(messages, max_prompt_tokens)
    cap = _positive_int(body, "max_output_tokens")
    if cap is None:
        reasoning, visible = reasoning_tokens, completion_tokens
        reserve = prompt_tokens + reasoning + visible
    else:
        reasoning = min(reasoning_tokens, cap)
        visible = min(completion_tokens, cap - reasoning)
        reserve = prompt_tokens + cap
    return ModelCall(
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=visible,
        reasoning_tokens=reasoning,
        reserved_tokens=reserve,
        capped=reasoning + visible < reasoning_tokens + completion_tokens,
        stream=bool(body.get("stream")),
        topic=topic,
    )


_FINGERPRINT = "fp_simulator"


def chat_usage(call: ModelCall) -> dict[str, Any]:
    """The ``usage`` object of a chat completion, xAI-shaped."""
    return {
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "total_tokens": call.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": call.prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": call.reasoning_tokens},
        "num_sources_used": 0,
        "cost_in_usd_ticks": call.cost_in_usd_ticks,
    }


def chat_body(call: ModelCall, request_id: str, created: int) -> dict[str, Any]:
    """A complete ``chat.completion`` object."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": call.answer, "refusal": None},
                "finish_reason": "length" if call.capped else "stop",
            }
        ],
        "usage": chat_usage(call),
        "system_fingerprint": _FINGERPRINT,
    }


def chat_chunks(call: ModelCall, request_id: str, created: int) -> list[bytes]:
    """Server-sent events of a streamed chat completion, the last one carrying ``usage``."""
    head = {"id": request_id, "object": "chat.completion.chunk", "created": created}
    head["model"] = call.model
    # As OpenAI-compatible servers stream: the fingerprint on every chunk, and the message's
    # every field (refusal too) opened in the first delta, so the assembled answer is the
    # non-streamed one.
    head["system_fingerprint"] = _FINGERPRINT
    words = call.answer.split(" ")
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
    events = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    finish = "length" if call.capped else "stop"
    events.append(
        {
            **head,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            "usage": chat_usage(call),
        }
    )
    out = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    out.append(b"data: [DONE]\n\n")
    return out


def responses_body(call: ModelCall, request_id: str, created: int) -> dict[str, Any]:
    """A complete ``response`` object of the Responses API (no ``output_text`` field)."""
    output: list[dict[str, Any]] = []
    if call.reasoning_tokens:
        output.append(
            {"type": "reasoning", "id": f"rs_{request_id}", "summary": [], "status": "completed"}
        )
    output.append(
        {
            "type": "message",
            "id": f"msg_{request_id}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": call.answer, "annotations": []}],
        }
    )
    output_tokens = call.completion_tokens + call.reasoning_tokens
    return {
        "id": request_id,
        "object": "response",
        "created_at": created,
        "model": call.model,
        "status": "incomplete" if call.capped else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if call.capped else None,
        "output": output,
        "usage": {
            "input_tokens": call.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": call.reasoning_tokens},
            "total_tokens": call.prompt_tokens + output_tokens,
            "cost_in_usd_ticks": call.cost_in_usd_ticks,
        },
    }


def tokenize(text: str) -> list[dict[str, Any]]:
    """Deterministic token ids for ``/v1/tokenize-text``: one per 4-character chunk."""
    chunks = [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]
    return [
        {
            "token_id": zlib.crc32(chunk.encode()) % 131_072,
            "string_token": chunk,
            "token_bytes": list(chunk.encode()),
        }
        for chunk in chunks
    ]
