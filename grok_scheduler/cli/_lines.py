"""Input lines -> jobs: parsing each JSONL line of a bulk run into a ``submit`` call.

Input lines come in two shapes and both become a ``(prompt, submit options)`` pair:

* OpenAI/xAI batch shape: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions" or
  "/v1/responses", "body": {...}}``. ``model``, ``messages``/``input``, ``max_tokens`` /
  ``max_completion_tokens`` / ``max_output_tokens`` and ``temperature`` map onto ``submit``;
  every other body field is sent as it is (``extra_body``).
* plain shape: ``{"id", "prompt": "..."}`` or ``{"id", "messages": [...]}`` with optional
  ``max_tokens``, ``temperature``, ``priority``, ``model``, ``metadata``.

A line without an id gets ``line-<n>``. A line that cannot become a job is an error result with
its line number; it never stops the run. :func:`request_hash` fingerprints a line's request, so
a resumed run can tell that an id now names a different request (an edited input).
:class:`IdSet` remembers custom_ids compactly (for duplicates within an input and for what
earlier runs finished).
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from .._core._map import Prepared, Rejected
from .._errors import InvalidJobError
from .._models import Endpoint, Priority

__all__ = [
    "DuplicateCustomIdError",
    "IdSet",
    "InvalidLineError",
    "LineParser",
    "LineRef",
    "count_lines",
    "iter_lines",
    "request_hash",
]

_URLS = {
    "/v1/chat/completions": Endpoint.CHAT_COMPLETIONS,
    "/chat/completions": Endpoint.CHAT_COMPLETIONS,
    "/v1/responses": Endpoint.RESPONSES,
    "/responses": Endpoint.RESPONSES,
}
# Body fields the scheduler itself sets; the rest of a body is passed through untouched.
_CHAT_OWN = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stream"}
)
_RESPONSES_OWN = frozenset({"model", "input", "max_output_tokens", "temperature", "stream"})
_PRIORITY_NAMES = {p.name.lower(): int(p) for p in Priority}
_MASK64 = (1 << 64) - 1


# -- errors ----------------------------------------------------------------------------------
class InvalidLineError(InvalidJobError):
    """An input line that cannot become a job: not JSON, a missing field, an unknown URL."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class DuplicateCustomIdError(InvalidLineError):
    """A line whose custom_id an earlier line of the same input already used."""


# -- compact id set --------------------------------------------------------------------------
class IdSet:
    """A set of custom_ids in 8 bytes per slot: 64-bit hashes in open addressing.

    A million ids cost about 16 MB instead of the ~90 MB of a ``set`` of strings. Two different
    ids collide with probability about n**2 / 2**65 (5e-8 for a million), an accepted risk; the
    hash is salted per process, so a collision would not repeat on the next run.
    """

    __slots__ = ("_mask", "_size", "_slots")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1024
        while size < 2 * capacity:
            size *= 2
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0

    @staticmethod
    def _key(item: str) -> int:
        return (hash(item) & _MASK64) or 1  # 0 marks an empty slot

    def add(self, item: str) -> bool:
        """Add ``item``; return False when it was already present."""
        if not self._insert(self._key(item)):
            return False
        self._size += 1
        if 2 * self._size > self._mask:
            self._grow()
        return True

    def _insert(self, key: int) -> bool:
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            value = slots[index]
            if value == 0:
                slots[index] = key
                return True
            if value == key:
                return False
            index = (index + 1) & mask

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", bytes(16 * len(old)))
        self._mask = len(self._slots) - 1
        for key in old:
            if key:
                self._insert(key)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        key = self._key(item)
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            value = slots[index]
            if value == 0:
                return False
            if value == key:
                return True
            index = (index + 1) & mask

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"IdSet(size={self._size}, slots={self._mask + 1})"


# -- input -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineRef:
    """Where a job came from: carried through the scheduler as the job's metadata."""

    custom_id: str
    line: int
    metadata: Any = None
    request_hash: str | None = None
    """The fingerprint of the input line (:func:`request_hash`), written to its output line."""
    echo_id: bool = False
    """The plain shape: the output line's ``id`` is the user's id, not a fresh one."""


def request_hash(raw: bytes) -> str:
    """A short fingerprint of one input line's request (its bytes, outer whitespace ignored).

    64 bits: two different requests under one id look equal with probability 2**-64.
    """
    return hashlib.blake2b(raw.strip(), digest_size=8).hexdigest()


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, raw line)`` lazily, numbering from 1."""
    return enumerate(stream, 1)


def count_lines(path: str | os.PathLike[str]) -> int:
    """Count lines quickly (newlines, plus an unterminated last line), without parsing."""
    count = 0
    last = b"\n"
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


class LineParser:
    """Turns one raw input line into ``(prompt, options)`` or a :class:`Rejected` bad line."""

    __slots__ = ("_priority_field",)

    def __init__(self, *, priority_field: str = "priority") -> None:
        self._priority_field = priority_field

    def __repr__(self) -> str:
        return f"LineParser(priority_field={self._priority_field!r})"

    def parse(self, raw: bytes, line: int, *, fingerprint: str | None = None) -> Prepared:
        """Parse line number ``line``; never raises for bad input.

        ``fingerprint`` (the line's :func:`request_hash`) is carried in the job's :class:`LineRef`.
        """
        fallback = f"line-{line}"
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            message = f"line {line} is not valid JSON: {exc}"
            return _reject(fallback, line, message, "invalid_json", fingerprint)
        if not isinstance(obj, dict):
            message = f"line {line} is not a JSON object"
            return _reject(fallback, line, message, "invalid_line", fingerprint)
        raw_id = obj.get("custom_id", obj.get("id"))
        if raw_id is None:
            custom_id = fallback
        elif isinstance(raw_id, str) and raw_id:
            custom_id = raw_id
        elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
            custom_id = str(raw_id)
        else:
            message = f"line {line}: custom_id must be a non-empty string or an integer"
            return _reject(fallback, line, message, "invalid_field", fingerprint)
        batch_shape = "body" in obj or "url" in obj or "method" in obj
        # The plain shape echoes the user's id (see LineRef.echo_id); built once, not replaced.
        ref = LineRef(custom_id, line, obj.get("metadata"), fingerprint, echo_id=not batch_shape)
        try:
            if batch_shape:
                return self._batch(obj, ref)
            return self._plain(obj, ref)
        except InvalidLineError as exc:
            return Rejected(exc, ref)

    def _batch(self, obj: dict[str, Any], ref: LineRef) -> Prepared:
        line = ref.line
        method = obj.get("method", "POST")
        if not isinstance(method, str) or method.upper() != "POST":
            raise InvalidLineError(f"line {line}: method must be POST", code="invalid_field")
        url = obj.get("url")
        if url is None:
            raise InvalidLineError(f"line {line}: the field 'url' is missing", code="missing_field")
        endpoint = _URLS.get(url) if isinstance(url, str) else None
        if endpoint is None:
            known = "/v1/chat/completions, /v1/responses"
            raise InvalidLineError(
                f"line {line}: unknown url {url!r} (expected {known})", code="unknown_url"
            )
        body = obj.get("body")
        if not isinstance(body, dict):
            raise InvalidLineError(
                f"line {line}: the field 'body' is missing or not an object", code="missing_field"
            )
        body = dict(body)
        priority = self._priority(obj, body, line)
        if body.get("stream"):
            raise InvalidLineError(
                f"line {line}: stream=true is not supported in bulk runs", code="invalid_field"
            )
        if endpoint is Endpoint.RESPONSES:
            prompt = body.get("input")
            missing = "body.input"
            max_tokens = body.get("max_output_tokens")
            own = _RESPONSES_OWN
        else:
            prompt = body.get("messages")
            missing = "body.messages"
            max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
            own = _CHAT_OWN
        if prompt is None:
            raise InvalidLineError(
                f"line {line}: the field '{missing}' is missing", code="missing_field"
            )
        options = _options(
            ref,
            model=body.get("model"),
            max_tokens=max_tokens,
            temperature=body.get("temperature"),
            priority=priority,
        )
        options["endpoint"] = endpoint
        extra = {k: v for k, v in body.items() if k not in own}
        if extra:
            options["extra_body"] = extra
        return prompt, options

    def _plain(self, obj: dict[str, Any], ref: LineRef) -> Prepared:
        prompt = obj.get("prompt", obj.get("messages"))
        if prompt is None:
            raise InvalidLineError(
                f"line {ref.line}: a line needs 'prompt' or 'messages' (or the batch shape "
                "with 'url' and 'body')",
                code="missing_field",
            )
        options = _options(
            ref,
            model=obj.get("model"),
            max_tokens=obj.get("max_tokens"),
            temperature=obj.get("temperature"),
            priority=self._priority(obj, None, ref.line),
        )
        return prompt, options

    def _priority(self, obj: dict[str, Any], body: dict[str, Any] | None, line: int) -> Any:
        name = self._priority_field
        value = obj.get(name)
        if value is None and isinstance(obj.get("metadata"), dict):
            value = obj["metadata"].get(name)
        if body is not None and name in body:
            # Not an API field: take it out of what is sent.
            from_body = body.pop(name)
            value = from_body if value is None else value
        if value is None:
            return None
        if isinstance(value, str) and value.lower() in _PRIORITY_NAMES:
            return _PRIORITY_NAMES[value.lower()]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidLineError(
            f"line {line}: {name} must be an integer or one of {sorted(_PRIORITY_NAMES)}",
            code="invalid_field",
        )


def _options(
    ref: LineRef, *, model: Any, max_tokens: Any, temperature: Any, priority: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {"metadata": ref}
    if model is not None:
        if not isinstance(model, str) or not model:
            raise InvalidLineError(
                f"line {ref.line}: model must be a non-empty string", code="invalid_field"
            )
        options["model"] = model
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    if priority is not None:
        options["priority"] = priority
    return options


def _reject(
    custom_id: str, line: int, message: str, code: str, fingerprint: str | None
) -> Rejected:
    ref = LineRef(custom_id, line, None, fingerprint)
    return Rejected(InvalidLineError(message, code=code), ref)
