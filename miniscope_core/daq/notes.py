"""notes.csv: free-text notes typed during recording (and, from v1.11, logged setting changes).

Notes must never cost the imaging: a line that does not start with a time is skipped and
counted, and a file that cannot be read is left out, each with one `MiniscopeWarning` naming
the file.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MiniscopeWarning
from .legacy import SETTINGS_FILE, legacy_notes

FIRST_SKIPPED = 5  # line numbers named in the warning


@dataclass(frozen=True)
class Notes:
    """The notes of one file, and the lines that could not be read as a note."""

    path: Path
    rows: list[tuple[int, str]] = field(default_factory=list)  # (ms since record start, text)
    lines: int = 0  # note lines (header and blank lines not counted)
    skipped: int = 0  # lines that do not start with a time
    first_skipped: tuple[int, ...] = ()  # their file line numbers (1 = the first line)
    problem: str | None = None  # why the file could not be read at all


def read_notes(path: Path) -> list[tuple[int, str]]:
    """(ms since recording start, text) rows; the file may be empty, headerless or headed.

    Note text is not quoted by the DAQ and may contain commas, so only the first comma splits.
    A legacy V3 recording's notes are in its settings_and_notes.dat (see `legacy`).
    """
    return read_notes_file(path).rows


def read_notes_file(path: Path) -> Notes:
    """`read_notes` with the counts; warns once when lines were skipped or the file unreadable."""
    path = Path(path)
    if path.name == SETTINGS_FILE:
        rows = legacy_notes(path)
        return Notes(path, rows, lines=len(rows))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        problem = f"cannot be read ({error.strerror or error})"
        warnings.warn(f"{path}: {problem}; its notes are left out", MiniscopeWarning, stacklevel=2)
        return Notes(path, problem=problem)
    notes = _parse(path, text)
    if notes.skipped:
        numbers = ", ".join(str(n) for n in notes.first_skipped)
        more = ", ..." if notes.skipped > len(notes.first_skipped) else ""
        plural = "s" if notes.skipped > 1 else ""
        warnings.warn(
            f"{path}: {notes.skipped} of {notes.lines} line{'s' if notes.lines > 1 else ''} "
            f"do{'es' if notes.skipped == 1 else ''} not start with a time (ms since the "
            f"recording start), skipped; line{plural} {numbers}{more}",
            MiniscopeWarning,
            stacklevel=2,
        )
    return notes


def _parse(path: Path, text: str) -> Notes:
    rows = []
    lines = skipped = 0
    first: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if number == 1:
            line = line.lstrip("\ufeff")
        if not line.strip() or line.startswith("Time Stamp"):
            continue
        lines += 1
        time_text, _, note = line.partition(",")
        time_ms = _time(time_text)
        if time_ms is None:
            skipped += 1
            if len(first) < FIRST_SKIPPED:
                first.append(number)
        else:
            rows.append((time_ms, note.strip()))
    return Notes(path, rows, lines, skipped, tuple(first))


def _time(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and "_" not in text else None
