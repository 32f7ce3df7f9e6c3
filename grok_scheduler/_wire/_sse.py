"""Server-sent events: bytes as they arrive -> the ``data`` payload of each complete event.

A pure, incremental decoder: a chunk may end mid-line or mid-event, so bytes are held until the
blank line that ends an event. Only ``data`` fields matter to the xAI API (``event`` names are
repeated inside the JSON as ``type``); comments (``:`` keep-alives) are skipped.
"""

from __future__ import annotations

__all__ = ["SseDecoder"]

# A server that never ends an event must not grow memory without bound.
_MAX_PENDING_BYTES = 16 * 1024 * 1024


class SseDecoder:
    """Feed bytes, get the ``data`` of each event they complete (multi-line data joined)."""

    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event ``chunk`` completes, in order."""
        self._buffer += chunk
        if len(self._buffer) > _MAX_PENDING_BYTES:
            raise ValueError("a server-sent event exceeded 16 MiB")
        events: list[str] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return events
            line = self._buffer[:end].rstrip(b"\r")
            self._buffer = self._buffer[end + 1 :]
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if name == b"data":
                self._data.append(value.removeprefix(b" ").decode("utf-8", "replace"))

    def flush(self) -> list[str]:
        """The data of an event left unterminated when the stream closed."""
        if self._buffer.strip():
            self.feed(b"\n")
        events = ["\n".join(self._data)] if self._data else []
        self._data = []
        return events

    def __repr__(self) -> str:
        return f"SseDecoder(pending_bytes={len(self._buffer)})"
