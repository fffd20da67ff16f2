"""Map the library's sessions under the raw root to partition keys, and a key back to its folder.

What a session is comes from `miniscope_core` (the same rule the command line uses); the walk
never follows symbolic links and skips hidden folders. A folder that resolves outside the raw
root is never used.
"""

from __future__ import annotations

from pathlib import Path

from miniscope_core import session_names
from miniscope_core.keys import parsed_rel_path


def is_inside(root: Path, folder: Path) -> bool:
    """Whether `folder`, with links resolved, is `root` or below it."""
    return folder.resolve().is_relative_to(root.resolve())


def find_sessions(raw_root: Path) -> dict[str, Path]:
    """Session folders below `raw_root` by partition key (a metaData.json still being written
    is looked at again on a later tick)."""
    root = raw_root.resolve()
    if not root.is_dir():
        return {}
    return session_names(root, skip_unreadable=True)


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
