"""What earlier runs finished: reading an existing output before a run appends to it.

Resume rule: a success line is final and its ``custom_id`` is never sent again; every other line
(a failure, a bad input line, a torn last line) is dropped before the run starts and its input
line is redone, so the finished file holds exactly one line per input line. Dropping rewrites
the file through a temporary file and an atomic rename, so a crash during resume loses nothing
either.

Changed input: a success line records its input line's ``request_hash``. When the same id now
names a different request (a line inserted above shifts every ``line-<n>`` id), the run refuses
(:class:`InputChangedError`, exit 2) instead of skipping a request never answered and filing an
answer under the wrong id. Refusing, not redoing, because an edited input under an old output is
more often a mistake than a plan, and refusing costs nothing: ``--overwrite`` or a new output
starts over deliberately. Success lines written before ``request_hash`` existed are kept as
before.
"""

from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._core._map import Rejected
from ._exit import UsageError
from ._lines import IdSet, LineParser, iter_lines, request_hash

__all__ = [
    "InputChangedError",
    "ResumeState",
    "changed_input_error",
    "first_changed_line",
    "prepare_output",
]


class InputChangedError(UsageError):
    """An id the output finished now names a different request: the input was edited."""


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
    hashed: IdSet = field(default_factory=IdSet)
    """custom_ids whose success line records the request it answered."""
    answered: IdSet = field(default_factory=IdSet)
    """``custom_id + NUL + request_hash`` of those success lines."""

    def status(self, custom_id: str, request_hash: str) -> Literal["todo", "done", "changed"]:
        """``done``: answered already; ``changed``: answered, but for another request."""
        if custom_id not in self.done:
            return "todo"
        if custom_id in self.hashed and _pair(custom_id, request_hash) not in self.answered:
            return "changed"
        return "done"


def _pair(custom_id: str, request_hash: str) -> str:
    return f"{custom_id}\0{request_hash}"


def prepare_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> ResumeState:
    """Make ``path`` ready for appending and return what it already holds (see module doc)."""
    target = Path(path)
    if overwrite or not target.exists() or target.stat().st_size == 0:
        with open(target, "wb"):
            pass
        return ResumeState(IdSet(), 0, 0, False, False)
    done, hashed, answered = IdSet(), IdSet(), IdSet()
    dropped_at = array("Q")
    kept = 0
    torn_at: int | None = None
    offset = 0
    with open(target, "rb") as stream:
        for raw in stream:
            if not raw.endswith(b"\n"):
                torn_at = offset
                break
            custom_id, fingerprint = _recorded_success(raw)
            if custom_id is not None and done.add(custom_id):
                kept += 1
                if fingerprint is not None:
                    hashed.add(custom_id)
                    answered.add(_pair(custom_id, fingerprint))
            elif raw.strip():
                dropped_at.append(offset)
            offset += len(raw)
    if dropped_at:
        _rewrite_without(target, dropped_at, end=torn_at)
    elif torn_at is not None:
        with open(target, "r+b") as stream:
            stream.truncate(torn_at)
            os.fsync(stream.fileno())
    return ResumeState(
        done, kept, len(dropped_at), torn_at is not None, True, hashed=hashed, answered=answered
    )


def _recorded_success(raw: bytes) -> tuple[str | None, str | None]:
    """The custom_id and request_hash of a success line; ``(None, None)`` for anything else."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(record, dict) or record.get("error") is not None:
        return None, None
    custom_id = record.get("custom_id")
    response = record.get("response")
    if not isinstance(custom_id, str) or not isinstance(response, dict):
        return None, None
    fingerprint = record.get("request_hash")
    return custom_id, fingerprint if isinstance(fingerprint, str) else None


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


def changed_input_error(input_name: str, output: Path, line: int, custom_id: str) -> UsageError:
    """The refusal of a run whose input no longer matches its output (see module doc)."""
    return InputChangedError(
        f"{input_name} changed since {output} was written: line {line} (id {custom_id!r}) is "
        f"not the request whose answer {output} holds for that id (a line inserted, removed or "
        "edited?). Start over with --overwrite, or write to a new --output."
    )


def first_changed_line(
    path: str, state: ResumeState, *, priority_field: str
) -> tuple[int, str] | None:
    """The first input line whose id the output answered for another request, if any.

    Read before anything is sent, so a changed file is refused at no cost (standard input,
    which cannot be read twice, is checked line by line as it streams instead).
    """
    if not len(state.hashed):
        return None  # nothing recorded with fingerprints: an output of an older version
    parser = LineParser(priority_field=priority_field)
    seen = IdSet()
    with open(path, "rb") as stream:
        for number, raw in iter_lines(stream):
            if not raw.strip():
                continue
            fingerprint = request_hash(raw)
            prepared = parser.parse(raw, number, fingerprint=fingerprint)
            if isinstance(prepared, Rejected):
                continue  # a bad line is an error line, never a skipped answer
            custom_id = prepared[1]["metadata"].custom_id
            if seen.add(custom_id) and state.status(custom_id, fingerprint) == "changed":
                return number, custom_id
    return None
