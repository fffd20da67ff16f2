"""Is a session folder finished being written? Cheap checks that a file watcher can run often.

Nothing here decodes video: a tick of a sensor must stay fast however many sessions exist.
A recording still being written shows as an AVI whose RIFF header was never finalised, as fewer
video files than its timestamps need, or as a size/mtime signature that is still changing.

Two signatures, of very different cost:
- `signature`: every file below the folder (count, bytes, newest mtime). It sees a file growing
  in place (the DAQ appends to `timeStamps.csv` and grows the current `N.avi` while recording),
  so a folder is watched with it until it has been handed over. One stat per file.
- `folders_signature`: the mtimes of the session folder, its acquisition folders and their
  subfolders (devices). A folder's mtime changes when an entry is added, removed or renamed in
  it (a new acquisition, the next `N.avi`, a file the lab adds, an editor's save-by-rename), not
  when a file grows or is rewritten in place. For a session already handed over - complete and
  settled, so the DAQ no longer writes in it - that is what changes, and it costs one stat per
  folder with no file looked at.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..daq.avi import avi_finalised
from ..daq.inventory import Links
from ..daq.model import Session
from ..errors import MiniscopeFormatError
from .discovery import discover, find_acquisition_folders


@dataclass(frozen=True)
class Signature:
    """Changes whenever any file below a folder is added, removed, renamed, grows or is touched;
    `files` is the digest of every file's name, size and mtime, `folders` the session's
    `folders_signature`, taken just before the files were looked at."""

    n_files: int
    n_bytes: int
    newest_mtime_ns: int
    folders: str = ""
    files: str = ""


@dataclass(frozen=True)
class FolderStatus:
    """Whether a session folder looks complete, and if not, the first reason why."""

    complete: bool
    reason: str
    signature: Signature
    acquisitions: tuple[str, ...]


def signature(folder: Path, acquisitions: Sequence[Path] | None = None) -> Signature:
    """Every file below `folder` (count, bytes, newest mtime, and a digest of each file's name,
    size and mtime, so that a renamed file counts as a change), after its folders' signature.

    The folders are read first, so an entry added while the files are counted shows as a change
    on a later look instead of being taken for part of a state already seen. `acquisitions` are
    the session's own acquisition folders as a listing found them (looked up if not given). A
    file that vanishes while it is counted is left out: the next look sees the new state.
    """
    if acquisitions is None:
        acquisitions = own_acquisitions(folder)
    folders = folders_signature(folder, acquisitions)
    files = sorted(_file_stats(str(folder)))
    digest = hashlib.blake2b(digest_size=8)
    for name, size, mtime_ns in files:
        digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return Signature(
        n_files=len(files),
        n_bytes=sum(size for _, size, _ in files),
        newest_mtime_ns=max((mtime_ns for _, _, mtime_ns in files), default=0),
        folders=folders,
        files=digest.hexdigest(),
    )


def _file_stats(top: str) -> Iterator[tuple[str, int, int]]:
    """(name relative to `top`, size, mtime) of every file below `top`; links to folders are
    followed as the inventory follows them, and a file gone since it was listed is left out."""
    stack, links = [top], Links(Path(top))
    while stack:
        try:
            entries = sorted(os.scandir(stack.pop()), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
                continue
            try:
                if entry.is_dir():
                    if not links.refusal(entry.path):
                        stack.append(entry.path)
                    continue
                stat = entry.stat()
            except OSError:
                continue
            yield entry.path[len(top) + 1 :], stat.st_size, stat.st_mtime_ns


def own_acquisitions(folder: Path) -> list[Path]:
    """The acquisition folders of the session at `folder` (itself, or those directly in it)."""
    found = find_acquisition_folders(folder, skip_unreadable=True)
    return [a for a in found if a == folder or a.parent == folder]


def folders_signature(folder: Path, acquisitions: Sequence[Path]) -> str:
    """`<folders>:<digest>` of the mtimes of `folder`, its `acquisitions` and their subfolders.

    Names are relative to `folder`, so moving the raw root keeps every signature.
    """
    digest = hashlib.blake2b(digest_size=8)
    count = 0
    for name, mtime_ns in _folder_mtimes(folder, acquisitions):
        digest.update(f"{name}\0{mtime_ns}\n".encode())
        count += 1
    return f"{count}:{digest.hexdigest()}"


def _folder_mtimes(folder: Path, acquisitions: Sequence[Path]) -> Iterator[tuple[str, int]]:
    yield ".", _mtime_ns(str(folder))
    top = len(str(folder)) + 1
    for acquisition in acquisitions:
        path = str(acquisition)
        if acquisition != folder:
            yield path[top:], _mtime_ns(path)
        try:
            with os.scandir(path) as entries:
                subfolders = sorted(  # linked device folders too, as the inventory reads them
                    (entry.path[top:], entry.stat().st_mtime_ns)
                    for entry in entries
                    if entry.is_dir()
                )
        except OSError:  # gone since it was listed (or a broken link): the folder above says so
            continue
        yield from subfolders


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _incomplete_reason(session: Session) -> str:
    for acquisition in session.acquisitions:
        for device in acquisition.devices:
            if device.timestamps_path is None:
                return f"{device.folder} has no timeStamps.csv yet"
            per_file = device.frames_per_file or device.timestamp_rows() or 1  # unknown: 1
            needed = math.ceil(device.timestamp_rows() / per_file)
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
