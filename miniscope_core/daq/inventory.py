"""Every file and folder of a session, each either used for the NWB file or left out with why.

The one place that decides what of a folder is converted: `collection.load_session` builds the
session from the acquisitions and devices found here, and nothing else looks at the folder's
files. Whatever does not reach the file is listed with its reason (by `inspect`, in the file's
notes, on the Dagster assets); what looks like recording data (a video, a table of rows, a
folder of them, a link) is also a warning naming it, and an error with `strict`.

Symbolic links are followed (labs keep large acquisitions on another disk), except one that
leads back into the folder being read or to a folder already read through another link: that
would read the same frames twice, or forever.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import InventoryWarning, MiniscopeFormatError, MiniscopeWarning
from .device_settings import unreadable_settings
from .legacy import CAMERA_PREFIX, SCOPE_PREFIX, SETTINGS_FILE, TIMESTAMP_FILE, is_legacy_folder
from .model import AcquisitionFiles, Device, DeviceKind, Entry, Inventory

METADATA = "metaData.json"
TIMESTAMPS = "timeStamps.csv"
ORIENTATION = "headOrientation.csv"
NOTES = "notes.csv"
# The session folder's own files: the lab's metadata and clock pairs (user_metadata, sync).
SESSION_FILES = {"nwb_metadata.yaml": "session metadata (NWB fields)", "sync.csv": "sync pairs"}
_VIDEO = re.compile(r"^(\d+)\.avi$", re.IGNORECASE)
_LEGACY_VIDEO = re.compile(rf"^({SCOPE_PREFIX}|{CAMERA_PREFIX})(\d+)\.avi$", re.IGNORECASE)
_VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".wmv", ".mj2", ".mpg", ".mpeg", ".webm")
_TABLE_SUFFIXES = (".csv", ".dat", ".tsv", ".txt")
_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "icon\r"}
# Device types by family (deviceType in the device metaData.json; labs may add their own).
_SCOPE_WORDS = ("miniscope", "scope", "lfov")
_CAMERA_WORDS = ("webcam", "minicam", "cam")


class Kind(Enum):
    """What a folder's own metaData.json (or legacy timestamp.dat) says it is."""

    NONE = "no metaData.json"
    ACQUISITION = "acquisition"
    DEVICE = "device"
    OTHER = "neither"
    UNREADABLE = "unreadable"


def is_session_metadata(metadata: dict[str, Any]) -> bool:
    return "miniscopes" in metadata or "cameras" in metadata or "recordingStartTime" in metadata


def is_device_metadata(metadata: dict[str, Any]) -> bool:
    return "deviceType" in metadata or "deviceName" in metadata


def folder_kind(folder: str, skip_unreadable: bool = False) -> Kind:
    """Classify `folder` by its metaData.json, read as bytes and parsed once.

    A file that does not parse (yet) raises the library's one-line error, or with
    `skip_unreadable` is reported as UNREADABLE so that a walk passes it over.
    """
    path = os.path.join(folder, METADATA)
    data = _read_bytes(path)
    if data is None:
        return Kind.ACQUISITION if is_legacy_folder(folder) else Kind.NONE
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        meta = None
    if not isinstance(meta, dict):
        if not skip_unreadable:
            read_json(Path(path))  # raises the error that names the file and the problem
        return Kind.UNREADABLE
    if is_session_metadata(meta):
        return Kind.ACQUISITION
    return Kind.DEVICE if is_device_metadata(meta) else Kind.OTHER


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


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or an error that names the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise MiniscopeFormatError(path, "is not text (expected a JSON object)") from error
    if not text.strip():
        raise MiniscopeFormatError(path, "is empty (expected a JSON object)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise MiniscopeFormatError(
            path, f"is not valid JSON: {error.msg} at line {error.lineno}"
        ) from error
    if not isinstance(value, dict):
        raise MiniscopeFormatError(path, "does not hold a JSON object")
    return value


class Links:
    """Which symbolic links to folders a walk follows: not one back into the tree being read
    (read there already, or a loop), nor one to a folder read through another link."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.followed: dict[str, str] = {}  # real target -> the link that reached it

    def refusal(self, link: str) -> str:
        """Why `link` is not followed ("" when it is, and from now on counts as read)."""
        target = os.path.realpath(link)
        if _within(target, self.root):
            return f"links back into {self.root}, which is read anyway; not followed"
        for seen, via in self.followed.items():
            if _within(target, seen) or _within(seen, target):
                return f"leads to {target}, already read through {via}; not followed"
        self.followed[target] = link
        return ""


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass
class _Walk:
    """The entries found so far, and the links followed."""

    root: Path
    links: Links
    entries: list[Entry] = field(default_factory=list)

    def add(self, path: Path, use: str = "", reason: str = "", warn: bool = False) -> None:
        link = os.readlink(path) if path.is_symlink() else ""
        self.entries.append(Entry(path, use, reason, warn, link))

    def children(self, folder: Path) -> Iterator[tuple[Path, bool]]:
        """(path, is a folder to enter) of every entry of `folder` by name; links that are not
        followed, broken links and unlistable folders become entries here."""
        try:
            with os.scandir(folder) as scan:
                names = sorted(entry.name for entry in scan)
        except OSError as error:
            self.add(folder, reason=f"cannot be listed ({error.strerror})", warn=True)
            return
        for name in names:
            path = folder / name
            if path.is_symlink():
                if not path.exists():
                    self.add(path, reason=f"a broken link (to {os.readlink(path)})", warn=True)
                    continue
                if path.is_dir() and (refusal := self.links.refusal(str(path))):
                    self.add(path, reason=f"a link that {refusal}", warn=True)
                    continue
            yield path, path.is_dir()


def take_inventory(root: Path) -> Inventory:
    """Walk a session folder (or an acquisition or device folder given by itself)."""
    walk = _Walk(root, Links(root))
    kind = folder_kind(str(root))
    if kind is Kind.DEVICE:
        device = _device(walk, root, None, None)
        return Inventory(root, tuple(walk.entries), lone_device=device)
    if kind is Kind.ACQUISITION:
        acquisitions = [_acquisition(walk, root, root.name)]
    else:
        acquisitions = []
        for path, is_dir in walk.children(root):
            if is_dir and folder_kind(str(path)) is Kind.ACQUISITION:
                acquisitions.append(_acquisition(walk, path, path.name))
            elif is_dir:
                _other_folder(walk, path, "a folder that is no acquisition")
            else:
                _session_file(walk, path)
    return Inventory(root, tuple(walk.entries), tuple(acquisitions))


def _session_file(walk: _Walk, path: Path) -> None:
    use = SESSION_FILES.get(path.name)
    if use:
        walk.add(path, use=use)
    else:
        _leftover(walk, path, "not part of a recording")


def _acquisition(walk: _Walk, folder: Path, label: str) -> AcquisitionFiles:
    if is_legacy_folder(folder):
        return _legacy_acquisition(walk, folder, label)
    walk.add(folder, use=f"acquisition {label}")
    meta_path = folder / METADATA
    metadata = read_json(meta_path)
    listed = _listed_devices(metadata)
    by_folder = {name.replace(" ", "_"): (name, kind) for name, kind in listed.items()}
    devices, notes = [], None
    for path, is_dir in walk.children(folder):
        if path.name == METADATA and not is_dir:
            walk.add(path, use="acquisition metadata (start time, devices, animal)")
        elif path.name == NOTES and not is_dir:
            walk.add(path, use="notes typed while recording")
            notes = path
        elif is_dir:
            name, kind = by_folder.pop(path.name, (None, None))
            device = _device_or_other(walk, path, name, kind)
            if device is not None:
                devices.append(device)
        else:
            _leftover(walk, path, "not part of the acquisition")
    for name, kind in by_folder.values():
        walk.add(
            folder / name.replace(" ", "_"),
            reason=f"{meta_path.name} lists {kind} {name!r} but its folder is missing",
            warn=True,
        )
    order = {name.replace(" ", "_"): place for place, name in enumerate(listed)}
    devices.sort(key=lambda device: (order.get(device.folder.name, len(order)), device.name))
    return AcquisitionFiles(folder, label, False, metadata, notes, tuple(devices))


def _legacy_acquisition(walk: _Walk, folder: Path, label: str) -> AcquisitionFiles:
    """A V3-era folder: its files are read by `legacy`, recognised here by name."""
    walk.add(folder, use=f"legacy V3 acquisition {label}")
    uses = {TIMESTAMP_FILE: "frame times of both cameras", SETTINGS_FILE: "settings and notes"}
    videos: dict[str, list[tuple[int, Path]]] = {SCOPE_PREFIX: [], CAMERA_PREFIX: []}
    prefixes = {prefix.lower(): prefix for prefix in videos}
    for path, is_dir in walk.children(folder):
        match = _LEGACY_VIDEO.match(path.name)
        if not is_dir and path.name in uses:
            walk.add(path, use=uses[path.name])
        elif not is_dir and match:
            videos[prefixes[match.group(1).lower()]].append((int(match.group(2)), path))
            walk.add(path, use=f"{match.group(1)} video {match.group(2)}")
        elif is_dir:
            _other_folder(walk, path, "a folder inside a legacy V3 acquisition")
        else:
            _leftover(walk, path, "not part of the acquisition")
    ordered = {prefix: tuple(path for _, path in sorted(found)) for prefix, found in videos.items()}
    return AcquisitionFiles(folder, label, True, {}, None, (), ordered)


def _listed_devices(metadata: dict[str, Any]) -> dict[str, DeviceKind]:
    listed: dict[str, DeviceKind] = {}
    kinds: tuple[tuple[str, DeviceKind], ...] = (("miniscopes", "miniscope"), ("cameras", "camera"))
    for key, kind in kinds:
        names = metadata.get(key) or []
        for name in names if isinstance(names, list) else []:
            listed[str(name)] = kind
    return listed


def _device_or_other(
    walk: _Walk, folder: Path, name: str | None, kind: DeviceKind | None
) -> Device | None:
    """A subfolder of an acquisition: a device (listed, or by its own metaData.json) or not."""
    found = folder_kind(str(folder))
    if found is Kind.ACQUISITION:
        walk.add(folder, reason="an acquisition inside an acquisition; converted on its own")
        return None
    if found is Kind.DEVICE and (name is not None or _recorded(folder)):
        return _device(walk, folder, name, kind)
    if name is not None:
        walk.add(folder, reason=f"listed {kind} {name!r} has no device metaData.json", warn=True)
        _contents(walk, folder, "in a device folder without metaData.json")
        return None
    why = (
        "a device folder that recorded nothing (no N.avi, no timeStamps.csv)"
        if found is Kind.DEVICE
        else "a folder that is no device (no device metaData.json)"
    )
    _other_folder(walk, folder, why)
    return None


def _recorded(folder: Path) -> bool:
    try:
        names = os.listdir(folder)
    except OSError:
        return True  # a device folder that cannot be listed: `children` says so
    return TIMESTAMPS in names or any(_VIDEO.match(name) for name in names)


def device_kind(listed: DeviceKind | None, settings: dict[str, Any], path: Path) -> DeviceKind:
    """Scope or camera: by the deviceType's family, else as the session lists it.

    A deviceType of neither family that the session does not list is refused: a scope taken
    for a camera would be linked, not stored.
    """
    device_type = str(settings.get("deviceType", "")).lower()
    if any(word in device_type for word in _SCOPE_WORDS):
        family: DeviceKind | None = "miniscope"
    elif any(word in device_type for word in _CAMERA_WORDS):
        family = "camera"
    else:
        family = None
    if family and listed and family != listed:
        warnings.warn(
            f"{path}: deviceType {settings.get('deviceType')!r} is a {family} but the session "
            f"lists the device as a {listed}; converted as a {family}",
            InventoryWarning,
            stacklevel=2,
        )
    kind = family or listed
    if kind is None:
        raise MiniscopeFormatError(
            path,
            f"deviceType {settings.get('deviceType')!r} is neither a known Miniscope nor a "
            "camera, and the session metaData.json does not list the device under miniscopes "
            "or cameras, so it cannot be told whether its frames are imaging",
        )
    return kind


def _device(walk: _Walk, folder: Path, name: str | None, listed: DeviceKind | None) -> Device:
    meta_path = folder / METADATA
    settings = read_json(meta_path)
    device_name = name or str(settings.get("deviceName") or folder.name)
    kind = device_kind(listed, settings, meta_path)
    for phrase in unreadable_settings(settings):
        warnings.warn(f"{meta_path}: {phrase}", MiniscopeWarning, stacklevel=2)
    walk.add(folder, use=f"{kind} {device_name}")
    videos: list[tuple[int, Path]] = []
    files: dict[str, Path] = {}
    uses = {METADATA: "device settings", TIMESTAMPS: "frame times", ORIENTATION: "head orientation"}
    for path, is_dir in walk.children(folder):
        match = _VIDEO.match(path.name)
        if is_dir:
            _other_folder(walk, path, "a folder inside a device folder")
        elif match:
            videos.append((int(match.group(1)), path))
            walk.add(path, use=f"video {match.group(1)} of {device_name}")
        elif path.name in uses:
            files[path.name] = path
            walk.add(path, use=uses[path.name])
        else:
            _leftover(walk, path, f"not one of {device_name}'s files")
    videos.sort()
    return Device(
        name=device_name,
        kind=kind,
        folder=folder,
        settings=settings,
        videos=tuple(path for _, path in videos),
        video_indices=tuple(index for index, _ in videos),
        timestamps_path=files.get(TIMESTAMPS),
        head_orientation_path=files.get(ORIENTATION),
    )


def _other_folder(walk: _Walk, folder: Path, why: str) -> None:
    """A folder that is no part of the recording: listed with everything in it (a hidden one,
    such as a trash folder or a copy in progress, is listed but not looked into)."""
    if folder.name.startswith("."):
        walk.add(folder, reason="a hidden folder (not looked into)")
        return
    if folder_kind(str(folder), skip_unreadable=True) is Kind.ACQUISITION:
        walk.add(folder, reason="an acquisition of another session; converted on its own")
        return
    walk.add(folder, reason="an empty folder" if _empty(folder) else why)
    _contents(walk, folder, f"in {folder.name}/, {why}")


def _empty(folder: Path) -> bool:
    """Whether `folder` holds nothing (one that cannot be listed is said by `children`)."""
    try:
        with os.scandir(folder) as scan:
            return next(scan, None) is None
    except OSError:
        return False


def _contents(walk: _Walk, folder: Path, why: str) -> None:
    for path, is_dir in walk.children(folder):
        if is_dir:
            _other_folder(walk, path, why)
        else:
            _leftover(walk, path, why)


def _leftover(walk: _Walk, path: Path, why: str) -> None:
    """A file nothing reads: a warning when it looks like recording data."""
    name = path.name.lower()
    if name.startswith(".") or name in _SYSTEM_FILES:
        walk.add(path, reason="a hidden or system file")
    elif any(suffix in name for suffix in _VIDEO_SUFFIXES):
        walk.add(path, reason=f"a video that is no device's numbered N.avi ({why})", warn=True)
    elif name.endswith(_TABLE_SUFFIXES) and _has_rows(path):
        walk.add(path, reason=f"a table of recorded rows that nothing reads ({why})", warn=True)
    else:
        walk.add(path, reason=why)


def _has_rows(path: Path) -> bool:
    """More than a header line (a table that holds data, not just its column names)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for line, _ in zip(handle, range(3), strict=False) if line.strip()) > 1
    except OSError:
        return True
