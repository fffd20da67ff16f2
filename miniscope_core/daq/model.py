"""What a session is made of: acquisitions, each with its devices and their files.

Which folders and files these are is decided by `inventory`, which makes the `Device` records
(from what is on disk: the DAQ's `baseDirectory`/`deviceDirectory` are stale paths of the
acquisition PC); `collection` puts them together into acquisitions and a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import MiniscopeFormatError
from .start_time import StartTime
from .timestamps import read_timestamps

DeviceKind = Literal["miniscope", "camera"]
MAX_FRAMES_PER_FILE = 10**7  # beyond any real recording's file (the DAQ's default is 1000)


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
    def frames_per_file(self) -> int | None:
        """framesPerFile when it is a usable count; None: the videos' own counts say it."""
        value = self.settings.get("framesPerFile")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            count = float(value)
        except ValueError:
            return None
        whole = count.is_integer() and 1 <= count <= MAX_FRAMES_PER_FILE
        return int(count) if whole else None

    @property
    def device_type(self) -> str:
        return str(self.settings.get("deviceType", "unknown"))

    @cached_property
    def timestamps(self) -> pd.DataFrame | None:
        """timeStamps.csv, read once however many steps ask (None when the device has none).

        A camera's damaged rows are repaired: its times must never cost the imaging."""
        if self.timestamps_path is None:
            return None
        return read_timestamps(self.timestamps_path, repair=self.kind == "camera")

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
    inventory: Inventory | None = None  # every file under `root`, used or left out, and why

    def device_names(self, kind: DeviceKind) -> list[str]:
        """Device names of one kind across acquisitions, in first-seen order."""
        names: dict[str, None] = {}
        for acquisition in self.acquisitions:
            for device in acquisition.devices:
                if device.kind == kind:
                    names.setdefault(device.name)
        return list(names)


@dataclass(frozen=True)
class Entry:
    """One file or folder under a session: what it is used as, or why it is left out."""

    path: Path  # where it is found in the session; links not resolved
    use: str = ""  # what the conversion uses it as; "" when left out
    reason: str = ""  # why it is left out
    warn: bool = False  # left out although it looks like recording data
    link: str = ""  # a symbolic link's target

    @property
    def used(self) -> bool:
        return bool(self.use)

    def describe(self, root: Path) -> str:
        where = _relative(self.path, root)
        via = f" (link to {self.link})" if self.link else ""
        return f"{where}{via}: {self.use or self.reason}"


@dataclass(frozen=True)
class AcquisitionFiles:
    """An acquisition folder as found: DAQ-QT (its session metaData.json) or legacy V3."""

    folder: Path
    label: str
    legacy: bool
    metadata: dict[str, Any]
    notes: Path | None
    devices: tuple[Device, ...]
    legacy_videos: dict[str, tuple[Path, ...]] = field(default_factory=dict)  # by prefix


@dataclass(frozen=True)
class Inventory:
    """A session folder, every entry accounted for, and the parts to convert."""

    root: Path
    entries: tuple[Entry, ...]
    acquisitions: tuple[AcquisitionFiles, ...] = ()
    lone_device: Device | None = None  # a device folder given by itself

    @property
    def left_out(self) -> list[Entry]:
        return [entry for entry in self.entries if not entry.used]

    @property
    def leftovers(self) -> list[Entry]:
        """Left out although they look like recording data: said, and refused with strict."""
        return [entry for entry in self.entries if entry.warn]

    def summary(self) -> str:
        files = sum(1 for entry in self.entries if entry.used)
        return (
            f"{files} used, {len(self.left_out)} left out "
            f"({len(self.leftovers)} of them look like recording data)"
        )

    def lines(self) -> list[str]:
        """The left-out entries as `path: reason` lines, relative to the session."""
        return [entry.describe(self.root) for entry in self.left_out]

    def rows(self) -> list[dict[str, Any]]:
        """The left-out entries as table rows (path relative to the session)."""
        return [
            {"path": _relative(e.path, self.root), "link": e.link, "reason": e.reason,
             "recording_data": e.warn}
            for e in self.left_out
        ]  # fmt: skip

    def check_strict(self) -> None:
        """With strict, recording data that would not reach the file refuses the conversion."""
        if self.leftovers:
            first = self.leftovers[0]
            more = len(self.leftovers) - 1
            raise MiniscopeFormatError(
                first.path,
                f"{first.reason}{f' (and {more} more such entries)' if more else ''}; "
                "with --strict nothing is converted while recording data would be left out",
            )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)
