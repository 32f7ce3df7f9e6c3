"""What the server accepted, counted by send time: the measurement behind rate discovery.

A call counts as accepted unless a 429 for it comes back. A 429 comes back at once (the server
refuses at admission), while an answer may take minutes, so the fate of every call sent more
than the *rejection horizon* ago is known long before its answer is: the horizon is twice the
slowest recent 429 turnaround. Counting by send time is what makes a measurement ready within
a fraction of a second at any answer latency; counting answers as they arrive (the previous
design) measured nothing once calls took longer than its window.

Sends within ``SLOT`` seconds share one :class:`SendRecord`, so memory is flat at any rate,
and the scheduler keeps each call's record on its job to book its fate minutes later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["SLOT", "AcceptanceLog", "Dimension", "SendRecord", "WindowCounts"]

Dimension = Literal["requests", "tokens"]

SLOT = 0.02
"""Seconds of send time that share one record."""
_HISTORY = 120.0
_DEFAULT_TURNAROUND = 0.05
_MAX_HORIZON = 30.0


class SendRecord:
    """Calls sent within one short slot of time, and what became of them."""

    __slots__ = ("rejected_requests", "rejected_tokens", "sent", "sent_at", "tokens")

    def __init__(self, sent_at: float) -> None:
        self.sent_at = sent_at
        self.sent = 0
        self.rejected_requests = 0
        self.rejected_tokens = 0
        self.tokens = 0.0  # tokens of the calls not rejected (estimates until answered)

    def __repr__(self) -> str:
        return (
            f"SendRecord(sent_at={self.sent_at:.3f}, sent={self.sent}, "
            f"rejected={self.rejected_requests + self.rejected_tokens}, tokens={self.tokens:g})"
        )


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What happened to the calls sent in one window of send times."""

    span: float
    sent: int
    rejected_requests: int
    rejected_tokens: int
    tokens: float

    @property
    def accepted(self) -> int:
        """Calls the server took (not refused by a 429)."""
        return self.sent - self.rejected_requests - self.rejected_tokens

    def rejected(self, dimension: Dimension) -> int:
        """Calls refused for ``dimension`` (a token 429 also spends no request credit)."""
        if dimension == "requests":
            return self.rejected_requests
        return self.rejected_requests + self.rejected_tokens

    def accepted_rate(self, dimension: Dimension) -> float:
        """Requests per second, or tokens per minute, that the server took."""
        if self.span <= 0:
            return 0.0
        if dimension == "requests":
            return self.accepted / self.span
        return max(0.0, self.tokens) / self.span * 60.0


class AcceptanceLog:
    """Sends by slot of send time, with their fate: the evidence the controller measures."""

    __slots__ = ("_records", "_turnarounds")

    def __init__(self) -> None:
        self._records: deque[SendRecord] = deque()
        self._turnarounds: deque[float] = deque(maxlen=32)

    def __repr__(self) -> str:
        return f"AcceptanceLog(records={len(self._records)}, horizon={self.horizon():.3f})"

    def sent(self, tokens: int, now: float) -> SendRecord:
        """A call leaves now with ``tokens`` reserved; returns the record to book its fate on."""
        records = self._records
        if records and now - records[-1].sent_at < SLOT:
            record = records[-1]
        else:
            record = SendRecord(now)
            records.append(record)
            oldest = now - _HISTORY
            while records[0].sent_at < oldest:
                records.popleft()
        record.sent += 1
        record.tokens += tokens
        return record

    def first_sent(self) -> float | None:
        """When the oldest call still in the log left (None: none did)."""
        return self._records[0].sent_at if self._records else None

    @staticmethod
    def answered(record: SendRecord, reserved: int, used: int) -> None:
        """A call of ``record`` was answered (not refused): book its real token count."""
        record.tokens += used - reserved

    def rejected(self, record: SendRecord, dimension: Dimension, reserved: int, now: float) -> None:
        """A call of ``record`` came back 429 for ``dimension``."""
        if dimension == "requests":
            record.rejected_requests += 1
        else:
            record.rejected_tokens += 1
        record.tokens -= reserved
        self._turnarounds.append(max(0.0, now - record.sent_at))

    def horizon(self) -> float:
        """Seconds after which a call with no 429 back counts as accepted."""
        slowest = max(self._turnarounds, default=_DEFAULT_TURNAROUND)
        return min(_MAX_HORIZON, 2.0 * slowest + 0.05)

    def window(self, start: float, end: float) -> WindowCounts:
        """The calls sent in ``[start, end)``."""
        sent = rejected_requests = rejected_tokens = 0
        tokens = 0.0
        for record in self._newest_first():
            if record.sent_at >= end:
                continue
            if record.sent_at < start:
                break
            sent += record.sent
            rejected_requests += record.rejected_requests
            rejected_tokens += record.rejected_tokens
            tokens += record.tokens
        return WindowCounts(max(0.0, end - start), sent, rejected_requests, rejected_tokens, tokens)

    def accepted_by_slot(self, start: float, end: float) -> list[tuple[float, int]]:
        """``(send time, calls taken)`` of each slot sent in ``[start, end)``, oldest first."""
        slots: list[tuple[float, int]] = []
        for record in self._newest_first():
            if record.sent_at >= end:
                continue
            if record.sent_at < start:
                break
            taken = record.sent - record.rejected_requests - record.rejected_tokens
            slots.append((record.sent_at, taken))
        slots.reverse()
        return slots

    def sent_rate(self, dimension: Dimension, span: float, now: float) -> float:
        """What was sent over the last ``span`` s: requests per second or tokens per minute."""
        counts = self.window(now - span, now + 1.0)
        if dimension == "requests":
            return counts.sent / span
        return max(0.0, counts.tokens) / span * 60.0

    def tokens_per_call(self, span: float, now: float) -> float | None:
        """The average tokens of the calls the server took lately (None: none taken)."""
        counts = self.window(now - span, now + 1.0)
        if counts.accepted <= 0 or counts.tokens <= 0:
            return None
        return counts.tokens / counts.accepted

    def _newest_first(self) -> Iterator[SendRecord]:
        return reversed(self._records)
