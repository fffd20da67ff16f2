"""What a session is, and a collection of them: one definition for the CLI, the API and Dagster.

An acquisition is a folder whose metaData.json is a DAQ session's (one press of Record), or a
legacy V3 recording folder (timestamp.dat, settings_and_notes.dat; see `legacy`). A
session is the folder that directly holds acquisition folders, or an acquisition folder (or a
lone device folder) given by itself. A folder holding several sessions is a collection, and
sessions are never merged: a cohort folder with `mouseA/<day>/<time>` and `mouseB/<day>/<time>`
is two sessions, whichever tool looks at it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from .errors import MiniscopeFormatError
from .keys import partition_key
from .legacy import check_not_mixed, is_legacy_folder, load_legacy_acquisition
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

_METADATA = "metaData.json"
# Listing: threads reading metaData.json files at once (the disk's waits overlap; parsing holds
# the GIL and does not), and folders per task.
_READERS = 8
_CHUNK = 256
T = TypeVar("T")


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
    return [Path(folder) for folder in _walk_acquisitions(str(root), skip_unreadable)]


@dataclass(frozen=True)
class ListedSession:
    """A session as a listing found it: its folder and its own acquisition folders (none for a
    lone device folder), so that a watcher can stat its folders without listing its files."""

    folder: Path
    acquisitions: tuple[Path, ...]


def find_sessions(root: Path | str, skip_unreadable: bool = False) -> list[Path]:
    """Session folders at or below `root`, sorted; one pass over the tree."""
    return [Path(folder) for folder, _ in _listing(Path(root), skip_unreadable)]


def session_name(root: Path, session: Path) -> str:
    """A session's name in a collection: its partition key and its --output-dir file name."""
    rel_path = PurePosixPath(session.relative_to(root).as_posix())
    return partition_key(rel_path if rel_path.parts else PurePosixPath(root.name))


def session_names(root: Path | str, skip_unreadable: bool = False) -> dict[str, Path]:
    """Every session below `root` by name (see `session_name`)."""
    return {name: listed.folder for name, listed in list_sessions(root, skip_unreadable).items()}


def list_sessions(root: Path | str, skip_unreadable: bool = False) -> dict[str, ListedSession]:
    """`session_names` with each session's own acquisition folders, from the same single walk."""
    root = Path(root)
    top = str(root)
    named = {}
    for folder, acquisitions in _listing(root, skip_unreadable):
        rel = folder[len(top) :].lstrip(os.sep)  # session_name without pathlib's parsing
        rel_path = PurePosixPath(rel) if rel else PurePosixPath(root.name)
        named[partition_key(rel_path)] = ListedSession(
            Path(folder), tuple(Path(a) for a in acquisitions)
        )
    return named


def _listing(root: Path, skip_unreadable: bool) -> list[tuple[str, list[str]]]:
    """Every session at or below `root` in path order, with its acquisitions (plain strings).

    Cost is linear in the folders above the acquisitions: each is opened for a metaData.json
    and listed only if it is no acquisition, and an acquisition's own folder (its devices, its
    videos) is never listed at all. Each acquisition's metaData.json is read and parsed once.
    """
    if not root.is_dir():
        raise MiniscopeFormatError(root, "is not a folder")
    top = str(root)
    if _kind(top, skip_unreadable) is _Kind.DEVICE:
        return [(top, [])]
    by_session: dict[str, list[str]] = {}
    for acquisition in _walk_acquisitions(top, skip_unreadable):
        session = top if acquisition == top else os.path.dirname(acquisition)
        by_session.setdefault(session, []).append(acquisition)
    return sorted(by_session.items(), key=lambda item: _path_order(item[0]))


class _Kind(Enum):
    """What a folder's own metaData.json says it is."""

    NONE = "no metaData.json"
    SESSION = "acquisition"
    DEVICE = "device"
    OTHER = "neither"
    UNREADABLE = "unreadable"


_LISTED = (_Kind.NONE, _Kind.OTHER)  # folders whose subfolders are looked at


def _walk_acquisitions(root: str, skip_unreadable: bool) -> list[str]:
    """Acquisition folders at or under `root`, in path order.

    Level by level: each folder of a level is asked for its metaData.json (one open), and only a
    folder that is neither an acquisition nor a device is listed, for its visible, real (not
    linked) subfolders, which make the next level. A large level is read by a few threads, so
    that on a cold cache the reads wait on the disk together instead of one after another.
    """
    found = []
    level = [root]
    with ThreadPoolExecutor(_READERS) as pool:
        while level:
            kinds = _in_chunks(pool, partial(_kinds, skip_unreadable=skip_unreadable), level)
            pairs = list(zip(level, kinds, strict=True))
            found += [folder for folder, kind in pairs if kind is _Kind.SESSION]
            listed = [folder for folder, kind in pairs if kind in _LISTED]
            level = _in_chunks(pool, _subfolders, listed)
    return sorted(found, key=_path_order)


def _in_chunks(
    pool: ThreadPoolExecutor, work: Callable[[list[str]], list[T]], items: list[str]
) -> list[T]:
    """`work(items)`, split among the pool's threads when there are many items."""
    if len(items) <= _CHUNK:
        return work(items)
    chunks = [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]
    return [result for results in pool.map(work, chunks) for result in results]


def _path_order(folder: str) -> list[str]:
    """Path order, part by part, which plain string order is not ("a/b" < "a-c")."""
    return folder.split(os.sep)


def _kinds(folders: list[str], skip_unreadable: bool) -> list[_Kind]:
    return [_kind(folder, skip_unreadable) for folder in folders]


def _subfolders(folders: list[str]) -> list[str]:
    """The visible subfolders of `folders`, sorted by name, symbolic links left out; an
    unreadable folder has none."""
    found = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                names = [
                    entry.name
                    for entry in entries
                    if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
                ]
        except OSError:
            continue
        names.sort()
        found += [os.path.join(folder, name) for name in names]
    return found


def _kind(folder: str, skip_unreadable: bool) -> _Kind:
    """Classify `folder` by its metaData.json, read as bytes and parsed once.

    A file that does not parse (yet) raises the library's one-line error, or with
    `skip_unreadable` is reported as UNREADABLE so that the walk passes it over.
    """
    path = os.path.join(folder, _METADATA)
    data = _read_bytes(path)
    if data is None:
        return _Kind.SESSION if is_legacy_folder(folder) else _Kind.NONE
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        meta = None
    if not isinstance(meta, dict):
        if not skip_unreadable:
            read_json(Path(path))  # raises the error that names the file and the problem
        return _Kind.UNREADABLE
    if is_session_metadata(meta):
        return _Kind.SESSION
    return _Kind.DEVICE if is_device_metadata(meta) else _Kind.OTHER


def _read_bytes(path: str) -> bytes | None:
    """A file's bytes; None if there is no such file, b"" if it cannot be read.

    os.open/os.read: a third of the cost of open() for the many small files of a listing.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except IsADirectoryError:
        return None
    except OSError:
        return b""
    finally:
        os.close(fd)


def _is_device_folder(folder: Path) -> bool:
    meta_path = folder / "metaData.json"
    if not meta_path.is_file():
        return False
    meta = read_json(meta_path)
    return is_device_metadata(meta) and not is_session_metadata(meta)


def discover(path: Path | str) -> Session:
    """The one session at or below `path`; a collection of several is refused, never merged."""
    root = Path(path)
    sessions = find_sessions(root)
    if not sessions:
        raise MiniscopeFormatError(
            root,
            "holds no Miniscope acquisition "
            "(no session metaData.json or legacy timestamp.dat below it)",
        )
    if len(sessions) > 1:
        raise CollectionError(root, sessions)
    return load_session(sessions[0])


def load_session(folder: Path) -> Session:
    """A session folder: its own acquisitions in time order, all of one animal."""
    if _is_device_folder(folder):
        return Session(root=folder, acquisitions=(_device_only_acquisition(folder),))
    acquisitions = [
        (load_legacy_acquisition if is_legacy_folder(a) else load_acquisition)(
            a, folder.name if a == folder else a.relative_to(folder).as_posix()
        )
        for a in find_acquisition_folders(folder)
        if a == folder or a.parent == folder
    ]
    acquisitions.sort(key=lambda a: (a.start.epoch_ms if a.start else 0, a.label))
    check_not_mixed(folder, acquisitions)
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
