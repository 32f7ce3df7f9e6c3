"""What earlier runs finished: reading an existing output before a run appends to it.

Resume rule: a success line is final and its ``custom_id`` is never sent again; every other line
(a failure, a bad input line, a torn last line) is dropped before the run starts and its input
line is redone, so the finished file holds exactly one line per input line. Dropping rewrites
the file through a temporary file and an atomic rename, so a crash during resume loses nothing
either.
"""

from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass
from pathlib import Path

from ._lines import IdSet

__all__ = ["ResumeState", "prepare_output"]


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
