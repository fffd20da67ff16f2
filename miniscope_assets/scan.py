"""Map the library's sessions under the raw root to partition keys, and a key back to its folder.

What a session is comes from `miniscope_core` (the same rule the command line uses); the walk
never follows symbolic links and skips hidden folders. A folder that resolves outside the raw
root is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

from miniscope_core import ListedSession, MiniscopeFormatError, parsed_rel_path
from miniscope_core import find_sessions as core_sessions
from miniscope_core import list_sessions as core_listing


def is_inside(root: Path, folder: Path) -> bool:
    """Whether `folder`'s own path (no `..`; links the lab put under `root` are its data and are
    followed, as the library's inventory follows them) is `root` or below it."""
    path = Path(os.path.abspath(folder))
    return path.is_relative_to(root.resolve()) or path.is_relative_to(os.path.abspath(root))


def find_sessions(raw_root: Path) -> dict[str, Path]:
    """Session folders below `raw_root` by partition key (a metaData.json still being written
    is looked at again on a later tick)."""
    return {key: listed.folder for key, listed in list_sessions(raw_root).items()}


def list_sessions(raw_root: Path, with_unreadable: bool = False) -> dict[str, ListedSession]:
    """`find_sessions` with each session's own acquisition folders, for watching it cheaply;
    `with_unreadable` adds the folders whose metaData.json does not parse (see the library)."""
    root = raw_root.resolve()
    if not root.is_dir():
        return {}
    return core_listing(root, skip_unreadable=True, with_unreadable=with_unreadable)


def is_gone(raw_root: Path, rel_path: str) -> bool:
    """Whether the session folder at `rel_path` is no more (removed, moved, or no longer holding
    an acquisition). One whose metaData.json cannot be read right now is not gone."""
    folder = raw_root.resolve() / rel_path
    if not folder.is_dir():
        return True
    try:
        return folder not in core_sessions(folder)
    except MiniscopeFormatError:
        return False


def session_folder(raw_root: Path, key: str) -> Path:
    """The folder of partition `key`: spelled by the key itself, or found by a rescan."""
    rel_path = parsed_rel_path(key)
    folder = raw_root / rel_path if rel_path else None
    if folder is None or not folder.is_dir():
        folder = find_sessions(raw_root).get(key)
    if folder is None:
        raise LookupError(f"no session folder for partition {key!r} under {raw_root}")
    if not is_inside(raw_root, folder):
        raise PermissionError(f"{folder} is outside the raw root {raw_root}; not read")
    return Path(os.path.abspath(folder))
