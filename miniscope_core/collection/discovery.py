"""What a session is, and a collection of them: one definition for the CLI, the API and Dagster.

An acquisition is a folder whose metaData.json is a DAQ session's (one press of Record), or a
legacy V3 recording folder (timestamp.dat, settings_and_notes.dat; see `legacy`). A
session is the folder that directly holds acquisition folders, or an acquisition folder (or a
lone device folder) given by itself. A folder holding several sessions is a collection, and
sessions are never merged: a cohort folder with `mouseA/<day>/<time>` and `mouseB/<day>/<time>`
is two sessions, whichever tool looks at it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ..daq.inventory import (
    METADATA,
    Kind,
    Links,
    folder_kind,
    is_session_metadata,
    read_json,
    take_inventory,
)
from ..daq.legacy import check_not_mixed, load_legacy_acquisition
from ..daq.model import Acquisition, AcquisitionFiles, Device, Session
from ..daq.start_time import has_start_time, parse_start_time
from ..errors import InventoryWarning, MiniscopeFormatError
from .keys import partition_key

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

    Device folders and hidden folders (e.g. a copy in progress) are not entered; symbolic links
    are followed as `inventory.Links` allows. With `skip_unreadable`, a metaData.json that does
    not parse yet (still being written) is passed over instead of raising.
    """
    found, _ = _walk_acquisitions(str(root), skip_unreadable)
    return [Path(folder) for folder in found]


@dataclass(frozen=True)
class ListedSession:
    """A session as a listing found it: its folder and its own acquisition folders (none for a
    lone device folder), so that a watcher can stat its folders without listing its files.

    `unreadable` are the acquisition folders whose metaData.json does not parse, when the
    listing was asked for them: a folder with only such ones is refused, never converted."""

    folder: Path
    acquisitions: tuple[Path, ...]
    unreadable: tuple[Path, ...] = ()

    def refusal(self) -> str:
        """The library's one-line error for the first unreadable metaData.json ("" if none, or
        if each has been fixed since the listing)."""
        for folder in self.unreadable:
            try:
                read_json(folder / METADATA)
            except MiniscopeFormatError as error:
                return str(error)
        return ""


def absolute(path: Path | str) -> Path:
    """`path` made absolute without resolving links (`.` has a name then: the session's)."""
    return Path(os.path.abspath(path))


def find_sessions(root: Path | str, skip_unreadable: bool = False) -> list[Path]:
    """Session folders at or below `root`, sorted; one pass over the tree."""
    return [Path(folder) for folder, _ in _listing(absolute(root), skip_unreadable)]


def session_names(root: Path | str, skip_unreadable: bool = False) -> dict[str, Path]:
    """Every session below `root` by name: its path in the collection `__`-joined (see `keys`),
    its partition key and its --output-dir file name."""
    return {name: listed.folder for name, listed in list_sessions(root, skip_unreadable).items()}


def list_sessions(
    root: Path | str, skip_unreadable: bool = False, *, with_unreadable: bool = False
) -> dict[str, ListedSession]:
    """`session_names` with each session's own acquisition folders, from the same single walk.

    `with_unreadable` (which skips them too) also lists the acquisitions whose metaData.json
    does not parse, under the session they would belong to, so that a lab sees every folder it
    recorded: a session of only such ones has no `acquisitions` and says why (`refusal`)."""
    root = absolute(root)
    top = str(root)
    named = {}
    listing = _listing(root, skip_unreadable or with_unreadable, with_unreadable)
    for folder, (acquisitions, unreadable) in listing:
        rel = folder[len(top) :].lstrip(os.sep)  # no pathlib parsing: a listing is hot
        rel_path = PurePosixPath(rel) if rel else PurePosixPath(root.name)
        named[partition_key(rel_path)] = ListedSession(
            Path(folder), tuple(map(Path, acquisitions)), tuple(map(Path, unreadable))
        )
    return named


def _listing(
    root: Path, skip_unreadable: bool, with_unreadable: bool = False
) -> list[tuple[str, tuple[list[str], list[str]]]]:
    """Every session at or below `root` in path order, with its acquisitions (plain strings).

    Cost is linear in the folders above the acquisitions: each is opened for a metaData.json
    and listed only if it is no acquisition, and an acquisition's own folder (its devices, its
    videos) is never listed at all. Each acquisition's metaData.json is read and parsed once.
    """
    if not root.is_dir():
        raise MiniscopeFormatError(root, "is not a folder")
    top = str(root)
    if folder_kind(top, skip_unreadable) is Kind.DEVICE:
        return [(top, ([], []))]
    found, unreadable = _walk_acquisitions(top, skip_unreadable)
    by_session: dict[str, tuple[list[str], list[str]]] = {}
    for which, folders in ((0, found), (1, unreadable if with_unreadable else [])):
        for acquisition in folders:
            session = top if acquisition == top else os.path.dirname(acquisition)
            by_session.setdefault(session, ([], []))[which].append(acquisition)
    return sorted(by_session.items(), key=lambda item: _path_order(item[0]))


_LISTED = (Kind.NONE, Kind.OTHER)  # folders whose subfolders are looked at


def _walk_acquisitions(root: str, skip_unreadable: bool) -> tuple[list[str], list[str]]:
    """Acquisition folders at or under `root`, and those whose metaData.json does not parse
    (found only when skipped), in path order.

    Level by level: each folder of a level is asked for its metaData.json (one open), and only a
    folder that is neither an acquisition nor a device is listed, for its visible subfolders,
    which make the next level. A large level is read by a few threads, so that on a cold cache
    the reads wait on the disk together instead of one after another. Links to folders (found
    by the threads) are judged here, in order, so the same walk always follows the same ones.
    """
    found, unreadable = [], []
    level = [root]
    links = Links(Path(root))
    with ThreadPoolExecutor(_READERS) as pool:
        while level:
            kinds = _in_chunks(pool, partial(_kinds, skip_unreadable=skip_unreadable), level)
            pairs = list(zip(level, kinds, strict=True))
            found += [folder for folder, kind in pairs if kind is Kind.ACQUISITION]
            unreadable += [folder for folder, kind in pairs if kind is Kind.UNREADABLE]
            listed = [folder for folder, kind in pairs if kind in _LISTED]
            level = [
                folder
                for folder, linked in _in_chunks(pool, _subfolders, listed)
                if not linked or not links.refusal(folder)
            ]
    return sorted(found, key=_path_order), sorted(unreadable, key=_path_order)


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


def _kinds(folders: list[str], skip_unreadable: bool) -> list[Kind]:
    return [folder_kind(folder, skip_unreadable) for folder in folders]


def _subfolders(folders: list[str]) -> list[tuple[str, bool]]:
    """(path, is a link) of the visible subfolders of `folders` (links to folders too), sorted
    by name; an unreadable folder has none."""
    found = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                names = [
                    (entry.name, entry.is_symlink())
                    for entry in entries
                    if not entry.name.startswith(".") and entry.is_dir()
                ]
        except OSError:
            continue
        names.sort()
        found += [(os.path.join(folder, name), linked) for name, linked in names]
    return found


def discover(path: Path | str) -> Session:
    """The one session at or below `path`; a collection of several is refused, never merged."""
    root = absolute(path)
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
    """A session folder: its own acquisitions in time order, all of one animal.

    What the session is made of comes from its inventory (see `inventory`), whose entries
    that look like recording data but do not reach the file are warned about here.
    """
    inventory = take_inventory(folder)
    for entry in inventory.leftovers:
        warnings.warn(
            f"{entry.path}: {entry.reason}; it does not reach the NWB file",
            InventoryWarning,
            stacklevel=2,
        )
    if inventory.lone_device is not None:
        acquisition = _device_only_acquisition(inventory.lone_device)
        return Session(root=folder, acquisitions=(acquisition,), inventory=inventory)
    acquisitions = [_acquisition(files) for files in inventory.acquisitions]
    acquisitions.sort(key=lambda a: (a.start.epoch_ms if a.start else 0, a.label))
    check_not_mixed(folder, acquisitions)
    _check_one_animal(folder, acquisitions)
    return Session(root=folder, acquisitions=tuple(acquisitions), inventory=inventory)


def _acquisition(files: AcquisitionFiles) -> Acquisition:
    if files.legacy:
        return load_legacy_acquisition(files.folder, files.label, files.legacy_videos)
    meta_path = files.folder / "metaData.json"
    return Acquisition(
        folder=files.folder,
        label=files.label,
        metadata=files.metadata,
        start=parse_start_time(files.metadata, meta_path),
        devices=files.devices,
        notes_path=files.notes,
    )


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


def _device_only_acquisition(device: Device) -> Acquisition:
    """A lone device folder; the start time comes from a session metaData.json above it if
    any, else from date fields of its own metaData.json (some DAQ versions write them there)."""
    parent_meta = device.folder.parent / "metaData.json"
    metadata: dict[str, Any] = {}
    start = None
    if parent_meta.is_file():
        metadata = read_json(parent_meta)
        if is_session_metadata(metadata):
            start = parse_start_time(metadata, parent_meta)
    if start is None and has_start_time(device.settings):
        start = parse_start_time(device.settings, device.folder / "metaData.json")
    return Acquisition(
        folder=device.folder,
        label=device.folder.name,
        metadata=metadata,
        start=start,
        devices=(device,),
        notes_path=None,
    )
