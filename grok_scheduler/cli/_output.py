"""Durable result lines: the batch output shape of each finished job, appended safely.

Output lines use the batch output shape, one per input line, appended and flushed as results
come in (fsync in batches): a success line carries the server's answer, a failure line the
error's type, code, status, attempts and input line number, with anything that looks like an
API key masked. A job that was never sent (the run stopped first) says so: ``"status_code":
null``, ``"code": "not_sent"``, attempts 0 and no response, never another call's status or id.

``id`` is the user's ``id`` for the plain input shape; for the batch shape it is the server's
request id (or a fresh UUID), as in the batch output format. ``request_hash`` fingerprints the
input line, so a resumed run can tell an edited input.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import itertools
import json
import os
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

from .._errors import APIError, redact
from .._models import Result
from ._lines import LineRef

__all__ = ["OutputWriter", "failure_line", "never_sent", "success_line"]

NOT_SENT = "not_sent"
"""The error ``code`` of a job the run never sent."""


# -- output lines ----------------------------------------------------------------------------
# One encoder for every line: json.dumps with these options builds a new one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _dump(obj: dict[str, Any]) -> bytes:
    # backslashreplace turns a lone surrogate into a valid JSON escape instead of failing.
    return _ENCODE(obj).encode("utf-8", "backslashreplace") + b"\n"


def _head(ref: LineRef, request_id: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {
        # The plain shape's id is the user's: a request id there would lose it (issue 13.14).
        "id": ref.custom_id if ref.echo_id else request_id or str(uuid.uuid4()),
        "custom_id": ref.custom_id,
    }
    if ref.request_hash is not None:
        head["request_hash"] = ref.request_hash
    return head


def _json_bytes(raw: bytes) -> bytes:
    """The server's JSON without outer whitespace or a UTF-8 byte-order mark (not JSON)."""
    raw = raw.strip()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :].strip()
    return raw


def success_line(ref: LineRef, result: Result) -> bytes:
    """The output line of a job that succeeded."""
    raw = _json_bytes(result.raw_body)
    # The server's JSON goes in as sent: it parsed already, and re-encoding every answer is
    # the bulk path's largest cost. Not when it spans lines (a JSONL line must not).
    if raw and b"\n" not in raw and b"\r" not in raw:
        request_id = result.request_id
        return b"".join(
            (
                _dump(_head(ref, request_id))[:-2],
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
    record = _head(ref, result.request_id)
    record["response"] = {
        "status_code": result.status_code,
        "request_id": result.request_id,
        "body": result.body,
    }
    record["error"] = None
    if ref.metadata is not None:
        record["metadata"] = ref.metadata
    return _dump(record)


def never_sent(error: BaseException) -> bool:
    """True for an API error of a job that was never sent (no attempt was made)."""
    # The scheduler sets ``attempts`` on every API error it fails a job with; 0 means the run
    # stopped (a bad key, no credits) before this job's turn came.
    return isinstance(error, APIError) and error.attempts == 0


def failure_line(ref: LineRef, error: BaseException) -> bytes:
    """The output line of a job that failed (or of a bad input line)."""
    code: Any
    if never_sent(error):
        assert isinstance(error, APIError)
        message: str = error.message
        if not message.startswith("not sent"):
            message = f"not sent: the run stopped before this job's turn: {message}"
        status, request_id, response, code = None, None, None, NOT_SENT
    else:
        message = error.message if isinstance(error, APIError) else str(error)
        status = getattr(error, "status_code", None)
        request_id = error.request_id if isinstance(error, APIError) else None
        response = None
        if status is not None:
            body = error.body if isinstance(error, APIError) else None
            response = {"status_code": status, "request_id": request_id, "body": body}
        code = getattr(error, "code", None)
    record = _head(ref, request_id)
    record["response"] = response
    record["error"] = {
        "type": type(error).__name__,
        "code": code,
        "message": message,
        "status_code": status,
        "attempts": getattr(error, "attempts", 0),
        "line": ref.line,
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

    ``ordered``: lines are still written as they arrive (a paid answer held in memory would be
    lost by a kill), each with its input line number; :meth:`put_in_order` then sorts the lines
    this writer appended, keeping 16 bytes per line in memory, never the lines themselves.
    """

    __slots__ = (
        "_executor",
        "_fd",
        "_keys",
        "_last_sync",
        "_lengths",
        "_pending",
        "_start",
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
        ordered: bool = False,
    ) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._start = os.fstat(self._fd).st_size
        self._keys: array[int] | None = array("Q") if ordered else None
        self._lengths = array("Q")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "grok-scheduler-fsync")
        self._pending: concurrent.futures.Future[None] | None = None
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self.lines = 0
        self._sync_lines = sync_lines
        self._sync_seconds = sync_seconds

    def write(self, line: bytes, *, key: int = 0) -> None:
        """Append one complete line (must end with a newline); ``key`` orders it when ordered."""
        fd = self._fd
        if fd is None:
            raise ValueError("the output is closed")
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        if self._keys is not None:
            self._keys.append(key)
            self._lengths.append(len(line))
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

    def put_in_order(self) -> None:
        """After :meth:`close`: sort the lines this writer appended by ``key`` (stable).

        Through a temporary file and an atomic rename: a crash meanwhile leaves the file as it
        was, every line still there in arrival order.
        """
        keys, lengths = self._keys, self._lengths
        if self._fd is not None:
            raise ValueError("close the output first")
        if keys is None or all(a <= b for a, b in itertools.pairwise(keys)):
            return
        offsets = array("Q", bytes(8 * len(lengths)))
        position = self._start
        for index, length in enumerate(lengths):
            offsets[index] = position
            position += length
        order = sorted(range(len(keys)), key=keys.__getitem__)
        temporary = self.path.with_name(f".{self.path.name}.order-{os.getpid()}.tmp")
        with open(self.path, "rb") as source, open(temporary, "wb") as sink:
            remaining = self._start
            while remaining:  # the lines of earlier runs, as they are
                chunk = source.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                sink.write(chunk)
                remaining -= len(chunk)
            for index in order:
                sink.write(os.pread(source.fileno(), lengths[index], offsets[index]))
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, self.path)

    def __repr__(self) -> str:
        return f"OutputWriter(path={str(self.path)!r}, lines={self.lines})"
