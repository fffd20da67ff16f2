"""What each NeuroConv interface reads, as the library's records, and several put together.

An interface is one acquisition's devices (a `daq.model.Acquisition` from `discover` or
`session_from_files`); a converter's interfaces become one `Session`, those of the same
acquisition folder merged, in time order, so the library converts them in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..collection.discovery import discover
from ..daq.explicit import session_from_files
from ..daq.model import Acquisition, Device, Session
from ..errors import MiniscopeFormatError


@dataclass(frozen=True)
class Part:
    """One interface's share of the file: `devices` of `acquisition`, under the name `key`."""

    key: str
    acquisition: Acquisition
    devices: tuple[Device, ...]

    @property
    def home(self) -> Path:
        """The folder with the acquisition's session metaData.json (above a device folder)."""
        folder = self.acquisition.folder
        inside = any(device.folder == folder for device in self.acquisition.devices)
        return folder.parent if inside else folder


def device_folder_part(folder: Path | str, kind: str) -> Part:
    """The devices of `kind` in one device folder, found as the library finds them."""
    path = Path(folder)
    session = discover(path)
    devices = [d for a in session.acquisitions for d in a.devices if d.kind == kind]
    if len(session.acquisitions) != 1 or len(devices) != 1:
        found = ", ".join(d.folder.name for a in session.acquisitions for d in a.devices)
        raise MiniscopeFormatError(
            path,
            f"is not one {kind}'s device folder (it holds {found or 'no device'}); give the "
            "device folder itself, or MiniscopeConverter(folder_path=...) for a whole session",
        )
    return Part("", session.acquisitions[0], (devices[0],))


def explicit_part(
    file_paths: Sequence[Path | str],
    configuration_file_path: Path | str,
    timestamps_file_path: Path | str | None,
) -> Part:
    """NeuroConv's `file_paths=`: the library's explicit session, videos in numeric order."""
    paths = [Path(p) for p in file_paths]
    if all(p.stem.isdigit() for p in paths):
        paths.sort(key=lambda p: int(p.stem))
    if timestamps_file_path is None and paths:
        beside = paths[0].parent / "timeStamps.csv"
        timestamps_file_path = beside if beside.is_file() else None
    session = session_from_files(paths, configuration_file_path, timestamps_file_path)
    acquisition = session.acquisitions[0]
    return Part("", acquisition, acquisition.devices)


def combined_session(parts: Sequence[Part]) -> Session:
    """One session of every part: parts of one acquisition folder and start share it."""
    groups: dict[tuple[Path, int | None], list[Part]] = {}
    for part in parts:
        start = part.acquisition.start
        groups.setdefault((part.home, start.epoch_ms if start else None), []).append(part)
    acquisitions = [_merged(group, len(groups) == 1) for group in groups.values()]
    acquisitions.sort(key=lambda a: a.start.epoch_ms if a.start else float("inf"))
    if len(parts) == 1 and len(parts[0].acquisition.devices) == len(parts[0].devices):
        root = _single_root(parts[0])
    else:
        root = Path(os.path.commonpath([str(a.folder) for a in acquisitions]))
    return Session(root=root, acquisitions=tuple(acquisitions))


def _single_root(part: Part) -> Path:
    return part.acquisition.folder


def _merged(group: list[Part], only: bool) -> Acquisition:
    """The parts of one acquisition as one: every device once, labelled by the first part."""
    devices: dict[Path, Device] = {}
    for part in group:
        for device in part.devices:
            if device.folder in devices:
                raise MiniscopeFormatError(
                    device.folder, f"is given to two interfaces ({group[0].key} and {part.key})"
                )
            devices[device.folder] = device
    first = group[0].acquisition
    label = first.label if only else group[0].key
    if len(group) == 1 and first.devices == group[0].devices:
        return replace(first, label=label)
    return replace(first, folder=group[0].home, label=label, devices=tuple(devices.values()))
