"""Durable result lines: the batch output shape of each finished job, appended safely.

Output lines use the batch output shape, one per input line, appended and flushed as results
come in (fsync in batches): a success line carries the server's answer, a failure line the
error's type, code, status, attempts and input line number, with anything that looks like an
API key masked.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from .._errors import APIError, redact
from .._models import Result
from ._lines import LineRef

__all__ = ["OutputWriter", "failure_line", "success_line"]


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
