"""Find session folders under the raw root, and map a partition key back to its folder.

A session is the folder that holds acquisition folders (the parent of each folder whose
metaData.json is a DAQ session's), so a new acquisition lands in an existing session. The walk
never follows symbolic links, skips hidden folders and does not enter acquisition folders: it
stays cheap enough for a sensor tick. A folder that resolves outside the raw root is never used.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from miniscope_core.session import find_acquisition_folders

from .keys import parsed_rel_path, partition_key


def is_inside(root: Path, folder: Path) -> bool:
    """Whether `folder`, with links resolved, is `root` or below it."""
    return folder.resolve().is_relative_to(root.resolve())


def find_sessions(raw_root: Path) -> dict[str, Path]:
    """Session folders below `raw_root` by partition key; a session inside another is merged."""
    root = raw_root.resolve()
    if not root.is_dir():
        return {}
    acquisitions = [f for f in find_acquisition_folders(root, skip_unreadable=True) if f != root]
    candidates = {a.parent if a.parent != root else a for a in acquisitions}
    sessions = [
        folder
        for folder in sorted(candidates)
        if not any(other in folder.parents for other in candidates)
    ]
    return {partition_key(PurePosixPath(f.relative_to(root).as_posix())): f for f in sessions}


def session_folder(raw_root: Path, key: str) -> Path:
    """The folder of partition `key`: spelled by the key itself, or found by a rescan."""
    rel_path = parsed_rel_path(key)
    folder = raw_root / rel_path if rel_path else None
    if folder is None or not folder.is_dir():
        folder = find_sessions(raw_root).get(key)
    if folder is None:
        raise LookupError(f"no session folder for partition {key!r} under {raw_root}")
    if not is_inside(raw_root, folder):
        raise PermissionError(f"{folder} resolves outside the raw root {raw_root}; not read")
    return folder.resolve()
