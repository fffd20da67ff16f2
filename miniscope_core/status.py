"""Is a session folder finished being written? Cheap checks that a file watcher can run often.

Nothing here decodes video: a tick of a sensor must stay fast however many sessions exist.
A recording still being written shows as an AVI whose RIFF header was never finalised, as fewer
video files than its timestamps need, or as a size/mtime signature that is still changing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .collection import discover
from .errors import MiniscopeFormatError
from .session import Session
from .video import avi_finalised


@dataclass(frozen=True)
class Signature:
    """Changes whenever any file below a folder is added, removed, grows or is touched."""

    n_files: int
    n_bytes: int
    newest_mtime_ns: int


@dataclass(frozen=True)
class FolderStatus:
    """Whether a session folder looks complete, and if not, the first reason why."""

    complete: bool
    reason: str
    signature: Signature
    acquisitions: tuple[str, ...]


def signature(folder: Path) -> Signature:
    n_files = n_bytes = newest = 0
    for current, _, files in os.walk(folder):
        for name in files:
            stat = os.stat(os.path.join(current, name))
            n_files += 1
            n_bytes += stat.st_size
            newest = max(newest, stat.st_mtime_ns)
    return Signature(n_files, n_bytes, newest)


def _incomplete_reason(session: Session) -> str:
    for acquisition in session.acquisitions:
        for device in acquisition.devices:
            if device.timestamps_path is None:
                return f"{device.folder} has no timeStamps.csv yet"
            with device.timestamps_path.open("rb") as handle:
                rows = sum(1 for _ in handle) - 1
            needed = math.ceil(max(rows, 0) / device.frames_per_file)
            if len(device.videos) < needed:
                return f"{device.folder} has {len(device.videos)} videos, timestamps need {needed}"
            unfinished = [v.name for v in device.videos if not avi_finalised(v)]
            if unfinished:
                return f"{device.folder} has unfinished videos: {', '.join(unfinished)}"
    return ""


def folder_status(folder: Path) -> FolderStatus:
    """Structural completeness of a session folder plus its current signature."""
    sig = signature(folder)
    try:
        session = discover(folder)
    except MiniscopeFormatError as error:
        return FolderStatus(False, str(error), sig, ())
    labels = tuple(a.label for a in session.acquisitions)
    reason = _incomplete_reason(session)
    return FolderStatus(not reason, reason, sig, labels)
