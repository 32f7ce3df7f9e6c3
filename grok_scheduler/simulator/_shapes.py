"""Answers of a requested shape: a tool call for ``tools``, JSON matching a ``json_schema``.

xAI's models answer a request with ``tools`` by calling one and a request with a structured
output format by JSON that matches the schema. The simulator does the same, deterministically,
so that SDK features built on them (LangChain's ``bind_tools`` and ``with_structured_output``,
openai-python's ``parse``) get something to parse: the first tool named by ``tool_choice`` (else
the first tool) is called with arguments built from its parameter schema; a ``json_schema``
format is answered by a value built from the schema, ``json_object`` by a small object.
Roles outside xAI's are refused with the 422 of xAI's body deserializer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._protocol import InvalidRequest, ModelCall, chat_body, chat_chunks

__all__ = [
    "ROLES",
    "Shape",
    "chat_events",
    "check_roles",
    "example",
    "request_shape",
    "shape_chat",
    "shape_chunks",
    "shape_responses",
    "shaped",
]

ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_DESERIALIZE = "Failed to deserialize the JSON body into the target type"
# Deep or self-referencing schemas are cut here rather than recursing forever.
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Shape:
    """What the answer must be: JSON text, or a call of the tool ``tool`` with that JSON."""

    json_text: str
    tool: str | None = None

    def call_id(self, request_id: str) -> str:
        """The tool call's id, derived from the request's so it is stable."""
        return f"call_{request_id.replace('-', '')[:24]}"


def check_roles(endpoint: str, payload: object) -> None:
    """Refuse a message whose role xAI does not know (422, as xAI's deserializer does)."""
    if not isinstance(payload, dict):
        return
    items = payload.get("messages" if endpoint == "chat" else "input")
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        role = item.get("role") if isinstance(item, dict) else None
        if isinstance(role, str) and role not in ROLES:
            field = "messages" if endpoint == "chat" else "input"
            expected = ", ".join(f"`{name}`" for name in sorted(ROLES))
            raise InvalidRequest(
                f"{_DESERIALIZE}: {field}[{index}].role: unknown variant `{role}`, "
                f"expected one of {expected}",
                status=422,
            )


def request_shape(endpoint: str, payload: object) -> Shape | None:
    """The shape a request asks its answer to take, or None for plain text."""
    if not isinstance(payload, dict):
        return None
    tool = _chosen_tool(endpoint, payload)
    if tool is not None:
        name, parameters = tool
        return Shape(json.dumps(example(parameters)), tool=name)
    fmt = payload.get("response_format") if endpoint == "chat" else _text_format(payload)
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return Shape(json.dumps({"answer": "Simulated answer."}))
    if kind == "json_schema":
        # Chat nests the schema under json_schema; the Responses API puts it in the format.
        holder = fmt.get("json_schema", fmt) if endpoint == "chat" else fmt
        schema = holder.get("schema") if isinstance(holder, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format json_schema needs a schema object")
        return Shape(json.dumps(example(schema)))
    return None


def _text_format(payload: dict[str, Any]) -> object:
    text = payload.get("text")
    return text.get("format") if isinstance(text, dict) else None


def _chosen_tool(endpoint: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    tools = payload.get("tools")
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list")
    functions: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue  # xAI's own tools (web search, ...) are not acted out
        spec = tool.get("function", tool) if endpoint == "chat" else tool
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest("each function tool needs a name")
        parameters = spec.get("parameters")
        functions[name] = parameters if isinstance(parameters, dict) else {}
    choice = payload.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        named = choice.get("function", choice)
        name = named.get("name") if isinstance(named, dict) else None
        if name not in functions:
            raise InvalidRequest(f"tool_choice names a function not in tools: {name!r}")
        return name, functions[name]
    first = next(iter(functions))
    return first, functions[first]


def example(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value that matches a JSON schema (the subset structured outputs use)."""
    root = schema if root is None else root
    if depth > _MAX_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example(target if isinstance(target, dict) else {}, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            return example((usable or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        return {
            name: example(sub if isinstance(sub, dict) else {}, root, depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        count = max(1, int(schema.get("minItems", 1) or 1))
        return [example(items if isinstance(items, dict) else {}, root, depth + 1)] * count
    return _scalar(kind, schema)


def _scalar(kind: object, schema: dict[str, Any]) -> Any:
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "simulated"


def shape_chat(body: dict[str, Any], shape: Shape, request_id: str) -> dict[str, Any]:
    """A rendered ``chat.completion`` answering in ``shape``."""
    choice = body["choices"][0]
    message = choice["message"]
    if shape.tool is None:
        message["content"] = shape.json_text
        return body
    message["content"] = None
    message["tool_calls"] = [_tool_call(shape, request_id)]
    choice["finish_reason"] = "tool_calls"
    return body


def shape_responses(body: dict[str, Any], shape: Shape, request_id: str) -> dict[str, Any]:
    """A rendered ``response`` answering in ``shape``."""
    output = [item for item in body["output"] if item.get("type") != "message"]
    if shape.tool is None:
        text = {"type": "output_text", "text": shape.json_text, "annotations": []}
        message = {"type": "message", "id": f"msg_{request_id}", "role": "assistant"}
        output.append({**message, "status": "completed", "content": [text]})
    else:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{request_id}",
                "call_id": shape.call_id(request_id),
                "name": shape.tool,
                "arguments": shape.json_text,
                "status": "completed",
            }
        )
    body["output"] = output
    return body


def _tool_call(shape: Shape, request_id: str) -> dict[str, Any]:
    return {
        "id": shape.call_id(request_id),
        "type": "function",
        "function": {"name": shape.tool, "arguments": shape.json_text},
    }


def shape_chunks(body: dict[str, Any], shape: Shape, request_id: str) -> list[bytes]:
    """The SSE events of a streamed ``chat.completion`` answering in ``shape``."""
    head = {key: body[key] for key in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    if shape.tool is None:
        delta: dict[str, Any] = {"role": "assistant", "content": shape.json_text}
        finish = "stop"
    else:
        delta = {"role": "assistant", "tool_calls": [{"index": 0, **_tool_call(shape, request_id)}]}
        finish = "tool_calls"
    events = [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {
            **head,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            "usage": body["usage"],
        },
    ]
    out = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
    out.append(b"data: [DONE]\n\n")
    return out


def shaped(endpoint: str, body: dict[str, Any], shape: Shape | None, request_id: str) -> Any:
    """A rendered answer of ``endpoint`` in ``shape`` (unchanged when there is none)."""
    if shape is None:
        return body
    if endpoint == "chat":
        return shape_chat(body, shape, request_id)
    return shape_responses(body, shape, request_id)


def chat_events(call: ModelCall, shape: Shape | None, request_id: str, created: int) -> list[bytes]:
    """The SSE events of a streamed chat answer, in ``shape`` when one was asked for."""
    if shape is None:
        return chat_chunks(call, request_id, created)
    return shape_chunks(chat_body(call, request_id, created), shape, request_id)
