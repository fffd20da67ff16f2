"""Find acquisitions and devices in a Miniscope DAQ folder, from what is on disk.

The DAQ's `baseDirectory`/`deviceDirectory` are stale paths of the acquisition PC, so files are
located only relative to where the session metaData.json actually is.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .clock import StartTime, parse_start_time
from .errors import MiniscopeFormatError, MissingDeviceWarning
from .timestamps import read_timestamps

DeviceKind = Literal["miniscope", "camera"]
_VIDEO_NAME = re.compile(r"^(\d+)\.avi$", re.IGNORECASE)


@dataclass(frozen=True)
class Device:
    """One Miniscope or behaviour camera in one acquisition."""

    name: str
    kind: DeviceKind
    folder: Path
    settings: dict[str, Any]
    videos: tuple[Path, ...]
    video_indices: tuple[int, ...]
    timestamps_path: Path | None
    head_orientation_path: Path | None
    sequential: bool = False  # videos simply follow each other (explicit file lists)

    @property
    def frames_per_file(self) -> int:
        return int(self.settings.get("framesPerFile") or 1000)

    @property
    def device_type(self) -> str:
        return str(self.settings.get("deviceType", "unknown"))

    @cached_property
    def timestamps(self) -> pd.DataFrame | None:
        """timeStamps.csv, read once however many steps ask (None when the device has none)."""
        return None if self.timestamps_path is None else read_timestamps(self.timestamps_path)

    def timestamps_source(self) -> str:
        """Where the frame times come from, as the series descriptions say it."""
        return self.timestamps_path.name if self.timestamps_path else "the requested frame rate"

    def timestamp_rows(self) -> int:
        """Frames the timestamps list, counted without parsing them (cheap for a sensor tick)."""
        if self.timestamps_path is None:
            return 0
        with self.timestamps_path.open("rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)


@dataclass(frozen=True)
class Acquisition:
    """One press of Record: a folder with a session metaData.json and its device folders."""

    folder: Path
    label: str
    metadata: dict[str, Any]
    start: StartTime | None
    devices: tuple[Device, ...]
    notes_path: Path | None

    def device(self, name: str) -> Device:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)


@dataclass(frozen=True)
class Session:
    """Everything to put in one NWB file: acquisitions in time order."""

    root: Path
    acquisitions: tuple[Acquisition, ...]

    def device_names(self, kind: DeviceKind) -> list[str]:
        """Device names of one kind across acquisitions, in first-seen order."""
        names: dict[str, None] = {}
        for acquisition in self.acquisitions:
            for device in acquisition.devices:
                if device.kind == kind:
                    names.setdefault(device.name)
        return list(names)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or an error that names the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror})") from error
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


def is_session_metadata(metadata: dict[str, Any]) -> bool:
    return "miniscopes" in metadata or "cameras" in metadata or "recordingStartTime" in metadata


def is_device_metadata(metadata: dict[str, Any]) -> bool:
    return "deviceType" in metadata or "deviceName" in metadata


def list_videos(folder: Path) -> tuple[tuple[Path, ...], tuple[int, ...]]:
    """`0.avi, 1.avi, ...` in numeric order (`10.avi` after `9.avi`), with their indices."""
    found = []
    for entry in os.scandir(folder):
        match = _VIDEO_NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), Path(entry.path)))
    found.sort()
    return tuple(path for _, path in found), tuple(index for index, _ in found)


def _optional_file(folder: Path, name: str) -> Path | None:
    path = folder / name
    return path if path.is_file() else None


def load_device(folder: Path, kind: DeviceKind | None = None, name: str | None = None) -> Device:
    """A device folder: its metaData.json, videos, timeStamps.csv and headOrientation.csv."""
    meta_path = folder / "metaData.json"
    if not meta_path.is_file():
        raise MiniscopeFormatError(folder, "is a device folder without metaData.json")
    settings = read_json(meta_path)
    device_name = name or str(settings.get("deviceName") or folder.name)
    if kind is None:
        kind = (
            "miniscope" if str(settings.get("deviceType", "")).startswith("Miniscope") else "camera"
        )
    videos, indices = list_videos(folder)
    return Device(
        name=device_name,
        kind=kind,
        folder=folder,
        settings=settings,
        videos=videos,
        video_indices=indices,
        timestamps_path=_optional_file(folder, "timeStamps.csv"),
        head_orientation_path=_optional_file(folder, "headOrientation.csv"),
    )


def _listed_devices(metadata: dict[str, Any]) -> dict[str, DeviceKind]:
    listed: dict[str, DeviceKind] = {}
    kinds: tuple[tuple[str, DeviceKind], ...] = (("miniscopes", "miniscope"), ("cameras", "camera"))
    for key, kind in kinds:
        for name in metadata.get(key) or []:
            listed[str(name)] = kind
    return listed


def _acquisition_devices(folder: Path, metadata: dict[str, Any]) -> list[Device]:
    """Devices listed in the session metaData.json, plus any other device folder found."""
    devices: list[Device] = []
    seen: set[Path] = set()
    for name, kind in _listed_devices(metadata).items():
        device_folder = folder / name.replace(" ", "_")
        if not (device_folder / "metaData.json").is_file():
            warnings.warn(
                f"{folder / 'metaData.json'} lists {kind} {name!r} but {device_folder} "
                "has no metaData.json; it is left out",
                MissingDeviceWarning,
                stacklevel=3,
            )
            continue
        devices.append(load_device(device_folder, kind, name))
        seen.add(device_folder)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        sub = Path(entry.path)
        if entry.is_dir() and sub not in seen and (sub / "metaData.json").is_file():
            meta = read_json(sub / "metaData.json")
            if is_device_metadata(meta) and (sub / "timeStamps.csv").is_file():
                devices.append(load_device(sub))
    return devices


def load_acquisition(folder: Path, label: str) -> Acquisition:
    """One acquisition folder, located by its session metaData.json."""
    meta_path = folder / "metaData.json"
    metadata = read_json(meta_path)
    return Acquisition(
        folder=folder,
        label=label,
        metadata=metadata,
        start=parse_start_time(metadata, meta_path),
        devices=tuple(_acquisition_devices(folder, metadata)),
        notes_path=_optional_file(folder, "notes.csv"),
    )
