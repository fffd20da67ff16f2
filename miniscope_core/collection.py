"""What a session is, and a collection of them: one definition for the CLI, the API and Dagster.

An acquisition is a folder whose metaData.json is a DAQ session's (one press of Record). A
session is the folder that directly holds acquisition folders, or an acquisition folder (or a
lone device folder) given by itself. A folder holding several sessions is a collection, and
sessions are never merged: a cohort folder with `mouseA/<day>/<time>` and `mouseB/<day>/<time>`
is two sessions, whichever tool looks at it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import MiniscopeFormatError
from .keys import partition_key
from .session import (
    Acquisition,
    Session,
    is_device_metadata,
    is_session_metadata,
    load_acquisition,
    load_device,
    parse_start_time,
    read_json,
)


class CollectionError(MiniscopeFormatError):
    """A folder holds several sessions where one was expected; they are listed, never merged."""

    def __init__(self, root: Path, sessions: list[Path]) -> None:
        self.sessions = sessions
        super().__init__(
            root,
            f"holds {len(sessions)} sessions, which are never merged into one file; "
            f"convert each into its own file with `miniscope-nwb convert {root} --output-dir DIR`, "
            "or give one session folder",
        )


def find_acquisition_folders(root: Path, skip_unreadable: bool = False) -> list[Path]:
    """Folders at or under `root` whose metaData.json is a session's, in path order.

    Device folders and hidden folders (e.g. a copy in progress) are not entered, nor are
    symbolic links followed. With `skip_unreadable`, a metaData.json that does not parse yet
    (still being written) is passed over instead of raising.
    """
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if "metaData.json" not in files:
            continue
        try:
            meta = read_json(Path(current) / "metaData.json")
        except MiniscopeFormatError:
            if not skip_unreadable:
                raise
            dirs[:] = []
            continue
        if is_session_metadata(meta):
            found.append(Path(current))
            dirs[:] = []
        elif is_device_metadata(meta):
            dirs[:] = []
    return found


def _is_device_folder(folder: Path) -> bool:
    meta_path = folder / "metaData.json"
    if not meta_path.is_file():
        return False
    meta = read_json(meta_path)
    return is_device_metadata(meta) and not is_session_metadata(meta)


def find_sessions(root: Path | str, skip_unreadable: bool = False) -> list[Path]:
    """Session folders at or below `root`, sorted; one pass over the tree."""
    root = Path(root)
    if not root.is_dir():
        raise MiniscopeFormatError(root, "is not a folder")
    if _is_device_folder(root):
        return [root]
    acquisitions = find_acquisition_folders(root, skip_unreadable)
    return sorted({folder if folder == root else folder.parent for folder in acquisitions})


def session_name(root: Path, session: Path) -> str:
    """A session's name in a collection: its partition key and its --output-dir file name."""
    rel_path = PurePosixPath(session.relative_to(root).as_posix())
    return partition_key(rel_path if rel_path.parts else PurePosixPath(root.name))


def session_names(root: Path | str, skip_unreadable: bool = False) -> dict[str, Path]:
    """Every session below `root` by name (see `session_name`)."""
    root = Path(root)
    return {session_name(root, s): s for s in find_sessions(root, skip_unreadable)}


def discover(path: Path | str) -> Session:
    """The one session at or below `path`; a collection of several is refused, never merged."""
    root = Path(path)
    sessions = find_sessions(root)
    if not sessions:
        raise MiniscopeFormatError(
            root, "holds no Miniscope acquisition (no session metaData.json below it)"
        )
    if len(sessions) > 1:
        raise CollectionError(root, sessions)
    return load_session(sessions[0])


def load_session(folder: Path) -> Session:
    """A session folder: its own acquisitions in time order, all of one animal."""
    if _is_device_folder(folder):
        return Session(root=folder, acquisitions=(_device_only_acquisition(folder),))
    acquisitions = [
        load_acquisition(a, folder.name if a == folder else a.relative_to(folder).as_posix())
        for a in find_acquisition_folders(folder)
        if a == folder or a.parent == folder
    ]
    acquisitions.sort(key=lambda a: (a.start.epoch_ms if a.start else 0, a.label))
    _check_one_animal(folder, acquisitions)
    return Session(root=folder, acquisitions=tuple(acquisitions))


def _check_one_animal(folder: Path, acquisitions: list[Acquisition]) -> None:
    """Two animals' acquisitions in one folder would read as one animal's session: refuse."""
    named = [(a, str(a.metadata.get("animalName") or "").strip()) for a in acquisitions]
    named = [(a, name) for a, name in named if name]
    for acquisition, name in named[1:]:
        first, first_name = named[0]
        if name != first_name:
            raise MiniscopeFormatError(
                folder,
                f"holds acquisitions of different animals: {first.label} is {first_name!r}, "
                f"{acquisition.label} is {name!r}; give each animal's acquisitions a session "
                "folder of their own",
            )


def _device_only_acquisition(folder: Path) -> Acquisition:
    """A lone device folder; the start time comes from a session metaData.json above it if any."""
    device = load_device(folder)
    parent_meta = folder.parent / "metaData.json"
    metadata: dict[str, Any] = {}
    start = None
    if parent_meta.is_file():
        metadata = read_json(parent_meta)
        if is_session_metadata(metadata):
            start = parse_start_time(metadata, parent_meta)
    return Acquisition(
        folder=folder,
        label=folder.name,
        metadata=metadata,
        start=start,
        devices=(device,),
        notes_path=None,
    )
