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

import math
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

    __slots__ = ("in_trailing", "rejected_requests", "rejected_tokens", "sent", "sent_at", "tokens")

    def __init__(self, sent_at: float) -> None:
        self.sent_at = sent_at
        self.sent = 0
        self.rejected_requests = 0
        self.rejected_tokens = 0
        self.tokens = 0.0  # tokens of the calls not rejected (estimates until answered)
        self.in_trailing = False  # counted in the log's trailing sums (see _Trailing)

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


class _Trailing:
    """Running sums of the records sent since ``start``: the last seconds, without a scan.

    The rate controller asks what was sent over the last 10 s on every tick (20 a second while
    a lane waits for credit), and a scan of 10 s of records each time was the largest single
    cost of the gateway's scheduling per request. Records enter the sums when sent, leave them
    as ``start`` moves past them (or history drops them), and a record's later fate (an answer's
    real tokens, a 429) changes the sums only while it is counted in them.
    """

    __slots__ = ("index", "rejected_requests", "rejected_tokens", "sent", "start", "tokens")

    def __init__(self) -> None:
        self.start = math.inf  # nothing counted until the first query sets it
        self.index = 0  # of the first record counted (records before it are older than start)
        self.sent = 0
        self.rejected_requests = 0
        self.rejected_tokens = 0
        self.tokens = 0.0

    def add(self, record: SendRecord, sign: int) -> None:
        self.sent += sign * record.sent
        self.rejected_requests += sign * record.rejected_requests
        self.rejected_tokens += sign * record.rejected_tokens
        self.tokens += sign * record.tokens
        record.in_trailing = sign > 0


class AcceptanceLog:
    """Sends by slot of send time, with their fate: the evidence the controller measures."""

    __slots__ = ("_records", "_trailing", "_turnarounds")

    def __init__(self) -> None:
        self._records: deque[SendRecord] = deque()
        self._turnarounds: deque[float] = deque(maxlen=32)
        self._trailing = _Trailing()

    def __repr__(self) -> str:
        return f"AcceptanceLog(records={len(self._records)}, horizon={self.horizon():.3f})"

    def sent(self, tokens: int, now: float) -> SendRecord:
        """A call leaves now with ``tokens`` reserved; returns the record to book its fate on."""
        records, trailing = self._records, self._trailing
        if records and now - records[-1].sent_at < SLOT:
            record = records[-1]
        else:
            record = SendRecord(now)
            records.append(record)
            if now >= trailing.start:
                record.in_trailing = True
            oldest = now - _HISTORY
            while records[0].sent_at < oldest:
                dropped = records.popleft()
                trailing.index = max(0, trailing.index - 1)
                if dropped.in_trailing:
                    trailing.add(dropped, -1)
        record.sent += 1
        record.tokens += tokens
        if record.in_trailing:
            trailing.sent += 1
            trailing.tokens += tokens
        return record

    def first_sent(self) -> float | None:
        """When the oldest call still in the log left (None: none did)."""
        return self._records[0].sent_at if self._records else None

    def answered(self, record: SendRecord, reserved: int, used: int) -> None:
        """A call of ``record`` was answered (not refused): book its real token count."""
        record.tokens += used - reserved
        if record.in_trailing:
            self._trailing.tokens += used - reserved

    def rejected(self, record: SendRecord, dimension: Dimension, reserved: int, now: float) -> None:
        """A call of ``record`` came back 429 for ``dimension``."""
        trailing = self._trailing if record.in_trailing else None
        if dimension == "requests":
            record.rejected_requests += 1
            if trailing is not None:
                trailing.rejected_requests += 1
        else:
            record.rejected_tokens += 1
            if trailing is not None:
                trailing.rejected_tokens += 1
        record.tokens -= reserved
        if trailing is not None:
            trailing.tokens -= reserved
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
        counts = self.trailing(span, now)
        if dimension == "requests":
            return counts.sent / span
        return max(0.0, counts.tokens) / span * 60.0

    def tokens_per_call(self, span: float, now: float) -> float | None:
        """The average tokens of the calls the server took lately (None: none taken)."""
        counts = self.trailing(span, now)
        if counts.accepted <= 0 or counts.tokens <= 0:
            return None
        return counts.tokens / counts.accepted

    def trailing(self, span: float, now: float) -> WindowCounts:
        """``window(now - span, now + 1.0)``, from running sums while ``now - span`` only grows.

        A window that starts earlier than the last one (another span, a clock set back) is
        summed afresh, and one with records after its end (sent at least 1 s "later" than now)
        is scanned as :meth:`window` does.
        """
        start, end = now - span, now + 1.0
        records, trailing = self._records, self._trailing
        if records and records[-1].sent_at >= end:
            return self.window(start, end)
        if start < trailing.start:
            trailing = self._recount(start)
        else:
            trailing.start = start
            while trailing.index < len(records) and records[trailing.index].sent_at < start:
                record = records[trailing.index]
                if record.in_trailing:
                    trailing.add(record, -1)
                trailing.index += 1
        return WindowCounts(
            max(0.0, end - start),
            trailing.sent,
            trailing.rejected_requests,
            trailing.rejected_tokens,
            trailing.tokens,
        )

    def _recount(self, start: float) -> _Trailing:
        """Sum the records sent since ``start`` afresh."""
        for record in self._records:
            record.in_trailing = False
        trailing = self._trailing = _Trailing()
        trailing.start = start
        trailing.index = len(self._records)
        for index in range(len(self._records) - 1, -1, -1):
            record = self._records[index]
            if record.sent_at < start:
                break
            trailing.add(record, +1)
            trailing.index = index
        return trailing

    def _newest_first(self) -> Iterator[SendRecord]:
        return reversed(self._records)
