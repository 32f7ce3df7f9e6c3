"""The batch road's state file: which batches exist and which lines each holds, appended.

One JSON object a line, written (and fsynced) before and after each step, so a killed run
knows on resume exactly what the server holds:

* ``{"batch": ID}``: the batch exists;
* ``{"adding": ID, "expect": N, "ids": [...]}``: a chunk is about to be added; once it lands
  the batch holds ``N`` requests;
* ``{"added": ID, "expect": N}``: it landed.

An ``adding`` with no ``added`` after it is settled on resume by the batch's ``num_requests``
(``>= N``: it landed), so no line is sent twice and none is lost. A line torn by a kill is
ignored (its step had not happened). The file holds ids only, never a prompt or a key: it can
travel with the output to resume on another machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Journal", "Pending"]


@dataclass(slots=True)
class Pending:
    """A chunk whose landing is not confirmed."""

    batch_id: str
    expect: int
    ids: list[str]


@dataclass(slots=True)
class _Replay:
    batches: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    submitted: set[str] = field(default_factory=set)
    pending: list[Pending] = field(default_factory=list)


class Journal:
    """An append-only state file; ``None`` path keeps it in memory (library runs)."""

    __slots__ = ("_fd", "_replay", "path")

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._replay = _Replay()
        self._fd: int | None = None
        if self.path is not None:
            if self.path.exists():
                self._load(self.path.read_bytes())
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __repr__(self) -> str:
        r = self._replay
        return f"Journal(path={self.path!r}, batches={len(r.batches)}, ids={len(r.submitted)})"

    def _load(self, data: bytes) -> None:
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                break  # torn by a kill: that step never happened
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        r = self._replay
        if "batch" in record:
            r.batches.append(record["batch"])
            r.counts.setdefault(record["batch"], 0)
        elif "adding" in record:
            r.pending.append(Pending(record["adding"], int(record["expect"]), record["ids"]))
        elif "added" in record:
            self._land(record["added"], int(record["expect"]))
        elif "lost" in record:
            r.pending = [
                p
                for p in r.pending
                if p.expect != int(record["expect"]) or p.batch_id != record["lost"]
            ]

    def _land(self, batch_id: str, expect: int) -> None:
        r = self._replay
        for p in list(r.pending):
            if p.batch_id == batch_id and p.expect == expect:
                r.pending.remove(p)
                r.submitted.update(p.ids)
                r.counts[batch_id] = expect

    def _write(self, record: dict[str, Any]) -> None:
        self._apply(record)
        if self._fd is None:
            return
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        os.write(self._fd, line)
        os.fsync(self._fd)

    # -- what the road records -------------------------------------------------------------
    def created(self, batch_id: str) -> None:
        self._write({"batch": batch_id})

    def adding(self, batch_id: str, ids: list[str]) -> int:
        """Record the intent; returns the count the batch has once the chunk lands."""
        expect = self._replay.counts.get(batch_id, 0) + len(ids)
        self._write({"adding": batch_id, "expect": expect, "ids": ids})
        return expect

    def added(self, batch_id: str, expect: int) -> None:
        self._write({"added": batch_id, "expect": expect})

    def lost(self, batch_id: str, expect: int) -> None:
        """The chunk did not land: its lines are free to be sent again."""
        self._write({"lost": batch_id, "expect": expect})

    # -- what a resumed run reads ----------------------------------------------------------
    @property
    def batches(self) -> list[str]:
        return list(self._replay.batches)

    def count(self, batch_id: str) -> int:
        return self._replay.counts.get(batch_id, 0)

    @property
    def pending(self) -> list[Pending]:
        return list(self._replay.pending)

    def submitted(self, custom_id: str) -> bool:
        return custom_id in self._replay.submitted

    @property
    def submitted_count(self) -> int:
        return len(self._replay.submitted)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
