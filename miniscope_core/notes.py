"""notes.csv: free-text notes typed during recording (and, from v1.11, logged setting changes)."""

from __future__ import annotations

from pathlib import Path

from .errors import MiniscopeFormatError
from .legacy import SETTINGS_FILE, legacy_notes


def read_notes(path: Path) -> list[tuple[int, str]]:
    """(ms since recording start, text) rows; the file may be empty, headerless or headed.

    Note text is not quoted by the DAQ and may contain commas, so only the first comma splits.
    A legacy V3 recording's notes are in its settings_and_notes.dat (see `legacy`).
    """
    if path.name == SETTINGS_FILE:
        return legacy_notes(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror})") from error
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("Time Stamp"):
            continue
        time_text, _, text = line.partition(",")
        try:
            rows.append((int(float(time_text)), text.strip()))
        except ValueError as error:
            raise MiniscopeFormatError(path, f"line {number} does not start with a time") from error
    return rows
