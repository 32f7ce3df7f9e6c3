"""Batch files: reading input lines, writing result lines durably, and resuming.

Input lines come in two shapes and both become a ``(prompt, submit options)`` pair:

* OpenAI/xAI batch shape: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions" or
  "/v1/responses", "body": {...}}``. ``model``, ``messages``/``input``, ``max_tokens`` /
  ``max_completion_tokens`` / ``max_output_tokens`` and ``temperature`` map onto ``submit``;
  every other body field is sent as it is (``extra_body``).
* plain shape: ``{"id", "prompt": "..."}`` or ``{"id", "messages": [...]}`` with optional
  ``max_tokens``, ``temperature``, ``priority``, ``model``, ``metadata``.

A line without an id gets ``line-<n>``. A line that cannot become a job is an error result with
its line number; it never stops the run.

Output lines use the batch output shape, one per input line, appended and flushed as results
come in (fsync in batches). Resume rule: a success line is final and its ``custom_id`` is never
sent again; every other line (a failure, a bad input line, a torn last line) is dropped before
the run starts and its input line is redone, so the finished file holds exactly one line per
input line. Dropping rewrites the file through a temporary file and an atomic rename, so a
crash during resume loses nothing either.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._core._map import Prepared, Rejected
from .._errors import APIError, InvalidJobError, redact
from .._models import Endpoint, Priority, Result

__all__ = [
    "DuplicateCustomIdError",
    "IdSet",
    "InvalidLineError",
    "LineParser",
    "LineRef",
    "OutputWriter",
    "ResumeState",
    "count_lines",
    "failure_line",
    "iter_lines",
    "prepare_output",
    "success_line",
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

    def parse(self, raw: bytes, line: int) -> Prepared:
        """Parse line number ``line``; never raises for bad input."""
        fallback = f"line-{line}"
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return _reject(fallback, line, f"line {line} is not valid JSON: {exc}", "invalid_json")
        if not isinstance(obj, dict):
            return _reject(fallback, line, f"line {line} is not a JSON object", "invalid_line")
        raw_id = obj.get("custom_id", obj.get("id"))
        if raw_id is None:
            custom_id = fallback
        elif isinstance(raw_id, str) and raw_id:
            custom_id = raw_id
        elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
            custom_id = str(raw_id)
        else:
            message = f"line {line}: custom_id must be a non-empty string or an integer"
            return _reject(fallback, line, message, "invalid_field")
        ref = LineRef(custom_id, line, obj.get("metadata"))
        try:
            if "body" in obj or "url" in obj or "method" in obj:
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


def _reject(custom_id: str, line: int, message: str, code: str) -> Rejected:
    return Rejected(InvalidLineError(message, code=code), LineRef(custom_id, line))


# -- output lines ----------------------------------------------------------------------------
def _dump(obj: dict[str, Any]) -> bytes:
    # backslashreplace turns a lone surrogate into a valid JSON escape instead of failing.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8", "backslashreplace") + b"\n"


def success_line(ref: LineRef, result: Result) -> bytes:
    """The output line of a job that succeeded."""
    raw = result.raw_body.strip()
    # The server's JSON goes in as sent: it parsed already, and re-encoding every answer is
    # the bulk path's largest cost. Not when it spans lines (a JSONL line must not).
    if raw and b"\n" not in raw and b"\r" not in raw:
        request_id = result.request_id
        head = {
            "id": request_id or str(uuid.uuid4()),
            "custom_id": ref.custom_id,
        }
        return b"".join(
            (
                _dump(head)[:-2],
                b',"response":{"status_code":',
                str(result.status_code).encode(),
                b',"request_id":',
                json.dumps(request_id).encode(),
                b',"body":',
                raw,
                b'},"error":null',
                b',"metadata":' + _dump({"m": ref.metadata})[5:-2]
                if ref.metadata is not None
                else b"",
                b"}\n",
            )
        )
    record: dict[str, Any] = {
        "id": result.request_id or str(uuid.uuid4()),
        "custom_id": ref.custom_id,
        "response": {
            "status_code": result.status_code,
            "request_id": result.request_id,
            "body": result.body,
        },
        "error": None,
    }
    if ref.metadata is not None:
        record["metadata"] = ref.metadata
    return _dump(record)


def failure_line(ref: LineRef, error: BaseException) -> bytes:
    """The output line of a job that failed (or of a bad input line)."""
    status = getattr(error, "status_code", None)
    request_id = error.request_id if isinstance(error, APIError) else None
    response = None
    if status is not None:
        body = error.body if isinstance(error, APIError) else None
        response = {"status_code": status, "request_id": request_id, "body": body}
    message = error.message if isinstance(error, APIError) else str(error)
    record: dict[str, Any] = {
        "id": request_id or str(uuid.uuid4()),
        "custom_id": ref.custom_id,
        "response": response,
        "error": {
            "type": type(error).__name__,
            "code": getattr(error, "code", None),
            "message": message,
            "status_code": status,
            "attempts": getattr(error, "attempts", 0),
            "line": ref.line,
        },
    }
    if ref.metadata is not None:
        record["metadata"] = ref.metadata
    # Failure text comes from servers and exceptions: mask anything that looks like a key.
    return redact(_dump(record).decode("utf-8")).encode("utf-8")


# -- durable appends -------------------------------------------------------------------------
class OutputWriter:
    """Appends whole lines to the output: one ``write`` per line, fsync in batches.

    A line reaches the kernel as soon as it is written, so a killed process loses nothing that
    was written; fsync (for power loss) runs every ``sync_lines`` lines or ``sync_seconds``
    seconds in a helper thread, so the event loop never waits for the disk, and at close.
    """

    __slots__ = (
        "_executor",
        "_fd",
        "_last_sync",
        "_pending",
        "_sync_lines",
        "_sync_seconds",
        "_unsynced",
        "lines",
        "path",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sync_lines: int = 100,
        sync_seconds: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "grok-scheduler-fsync")
        self._pending: concurrent.futures.Future[None] | None = None
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self.lines = 0
        self._sync_lines = sync_lines
        self._sync_seconds = sync_seconds

    def write(self, line: bytes) -> None:
        """Append one complete line (must end with a newline)."""
        fd = self._fd
        if fd is None:
            raise ValueError("the output is closed")
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        self.lines += 1
        self._unsynced += 1
        if self._unsynced >= self._sync_lines:
            self._sync_soon()

    def sync_if_due(self) -> None:
        """fsync in the background if lines have waited longer than ``sync_seconds``."""
        if self._unsynced and time.monotonic() - self._last_sync >= self._sync_seconds:
            self._sync_soon()

    def _sync_soon(self) -> None:
        if self._pending is not None and not self._pending.done():
            return  # the running fsync will be followed by another at the next trigger
        self._unsynced = 0
        self._last_sync = time.monotonic()
        assert self._fd is not None
        self._pending = self._executor.submit(os.fsync, self._fd)

    def close(self) -> None:
        """fsync what was written and close the file."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._pending is not None:
                self._pending.result()
            os.fsync(fd)
        finally:
            self._executor.shutdown(wait=True)
            os.close(fd)

    def __repr__(self) -> str:
        return f"OutputWriter(path={str(self.path)!r}, lines={self.lines})"


# -- resume ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResumeState:
    """What an existing output already holds when a run starts."""

    done: IdSet
    """custom_ids with a success line: never sent again."""
    kept: int
    """Success lines kept."""
    dropped: int
    """Failure, bad or duplicate lines removed so their jobs are redone."""
    torn: bool
    """A torn last line (a write cut short) was cut away."""
    resumed: bool
    """True when the output existed with content (a resumed run)."""


def prepare_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> ResumeState:
    """Make ``path`` ready for appending and return what it already holds (see module doc)."""
    target = Path(path)
    if overwrite or not target.exists() or target.stat().st_size == 0:
        with open(target, "wb"):
            pass
        return ResumeState(IdSet(), 0, 0, False, False)
    done = IdSet()
    dropped_at = array("Q")
    kept = 0
    torn_at: int | None = None
    offset = 0
    with open(target, "rb") as stream:
        for raw in stream:
            if not raw.endswith(b"\n"):
                torn_at = offset
                break
            custom_id = _recorded_success(raw)
            if custom_id is not None and done.add(custom_id):
                kept += 1
            elif raw.strip():
                dropped_at.append(offset)
            offset += len(raw)
    if dropped_at:
        _rewrite_without(target, dropped_at, end=torn_at)
    elif torn_at is not None:
        with open(target, "r+b") as stream:
            stream.truncate(torn_at)
            os.fsync(stream.fileno())
    return ResumeState(done, kept, len(dropped_at), torn_at is not None, True)


def _recorded_success(raw: bytes) -> str | None:
    """The custom_id of a success line, or None for anything else."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("error") is not None:
        return None
    custom_id = record.get("custom_id")
    response = record.get("response")
    if not isinstance(custom_id, str) or not isinstance(response, dict):
        return None
    return custom_id


def _rewrite_without(target: Path, dropped_at: array[int], *, end: int | None) -> None:
    """Copy every line but the dropped ones to a temporary file, then rename it over ``target``."""
    temporary = target.with_name(f".{target.name}.resume-{os.getpid()}.tmp")
    drops = iter(dropped_at)
    next_drop = next(drops, None)
    offset = 0
    with open(target, "rb") as source, open(temporary, "wb") as sink:
        for raw in source:
            if end is not None and offset >= end:
                break
            if offset == next_drop:
                next_drop = next(drops, None)
            else:
                sink.write(raw)
            offset += len(raw)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
