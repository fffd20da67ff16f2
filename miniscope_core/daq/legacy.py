"""Recordings of the legacy Miniscope DAQ software (V3 era, ~2015-2019) as ordinary acquisitions.

What the files hold, from the software's own source (github.com/daharoni/Miniscope_DAQ_Software,
`MiniScopeControlDlg.cpp`: `OnBnClickedRecord`, `camWrite`, `OnBnClickedSubmitnote`) and from
ndx-miniscope's readers (`ndx_miniscope/utils/{timestamps,settings,notes}.py`):

- Record makes `data\\<M>_<D>_<YYYY>\\H<h>_M<m>_S<s>\\` (local PC time, no zero padding, the
  only record of the date), holding `msCam1.avi, msCam2.avi, ...` and `behavCam1.avi, ...`
  (1000 frames per file, `msCamMaxFrames`), `timestamp.dat` and `settings_and_notes.dat`.
- `timestamp.dat`: tab-separated `camNum frameNum sysClock buffer`, one row per frame of both
  cameras in the order they were written. `camNum` is the OpenCV device index the user picked
  (`mScopeCamID`, `mBehaviorCamID`), so which one is the Miniscope is decided here from the
  frame counts of the videos. `frameNum` counts from 1 per camera. `sysClock` is the grab time in
  ms since Record (QueryPerformanceCounter, a 32-bit UINT printed with `%li`, so it may read
  negative); a frame grabbed just before Record keeps a time measured from a stale start, so a
  camera's first row can be far off (ndx-miniscope sets it to 0).
- `settings_and_notes.dat`: a header row `animal excitation msCamExposure recordLength`, its
  value row, a blank line, `elapsedTime Note`, then one row per note (typed, or logged as
  `LED excitation intensity set to N`); `elapsedTime` is whole seconds since Record.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MiniscopeFormatError, MiniscopeWarning, MissingDeviceWarning
from .model import Acquisition, Device, DeviceKind
from .start_time import StartTime
from .timestamps import read_table
from .video import count_frames

TIMESTAMP_FILE = "timestamp.dat"
SETTINGS_FILE = "settings_and_notes.dat"
FRAMES_PER_FILE = 1000
SCOPE_PREFIX, CAMERA_PREFIX = "msCam", "behavCam"
SCOPE_NAME, CAMERA_NAME = "Miniscope", "BehavCam"
SCOPE_TYPE, CAMERA_TYPE = "Miniscope_V3", "WebCam"
COMPRESSION = "DIB "  # CV_FOURCC('D','I','B',' '): uncompressed bitmaps
_COLUMNS = ("camNum", "frameNum", "sysClock", "buffer")
_DATE = re.compile(r"^(\d{1,2})_(\d{1,2})_(\d{4})$")
_TIME = re.compile(r"^H(\d{1,2})_M(\d{1,2})_S(\d{1,2})$")
_NOTES_HEADER = "elapsedTime"
# A first interval beyond this many median intervals (or negative) is a stale clock, not a gap.
_STALE_FACTOR = 10


class UnreliableClockWarning(MiniscopeWarning):
    """A camera's first sysClock in timestamp.dat was measured from a stale start; replaced."""


@dataclass(frozen=True)
class LegacyDevice(Device):
    """The scope or camera of a V3 recording, with its rows of timestamp.dat (read once, split
    by camNum) standing in for a timeStamps.csv."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)
    cam_num: int = -1
    first_estimated: bool = False  # its first sysClock was stale (see `reliable_times`)

    @property  # type: ignore[override]
    def timestamps(self) -> pd.DataFrame:
        return self.table

    def timestamps_source(self) -> str:
        source = f"{TIMESTAMP_FILE} camNum {self.cam_num}"
        if self.first_estimated:
            source += f" (the first time in {self.folder.name} estimated: its sysClock was stale)"
        return source

    def timestamp_rows(self) -> int:
        return len(self.table)


@dataclass(frozen=True)
class LegacySettings:
    """settings_and_notes.dat: the settings row by its header, and the notes."""

    values: dict[str, str]
    notes: tuple[tuple[int, str], ...]  # (whole seconds since Record, text)


def is_legacy_folder(folder: str | Path) -> bool:
    """A folder of the legacy software: it holds timestamp.dat or settings_and_notes.dat."""
    return any(
        os.path.isfile(os.path.join(folder, name)) for name in (TIMESTAMP_FILE, SETTINGS_FILE)
    )


def read_timestamp_dat(path: Path) -> pd.DataFrame:
    """The four integer columns of timestamp.dat, by name; a short or garbled row names itself."""
    table = read_table(
        path, "tab-separated camNum, frameNum, sysClock, buffer",
        "is missing (a legacy V3 recording always has one)",
        sep="\t", dtype=str, keep_default_na=False,
    )  # fmt: skip
    missing = [column for column in _COLUMNS if column not in table.columns]
    if missing:
        raise MiniscopeFormatError(path, f"has no {', '.join(missing)} column (is it truncated?)")
    if table.empty:
        raise MiniscopeFormatError(path, "lists no frames")
    out = pd.DataFrame()
    for column in _COLUMNS:
        values = pd.to_numeric(table[column].str.strip(), errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise MiniscopeFormatError(
                path, f"line {row}: {column} is not a number (the file is truncated or garbled)"
            )
        out[column] = values.astype(np.int64)
    return out


def read_settings(path: Path) -> LegacySettings:
    """settings_and_notes.dat; a note whose text ran over a line break is joined back."""
    try:
        lines = _text(path.read_bytes()).splitlines()
    except FileNotFoundError as error:
        raise MiniscopeFormatError(
            path, "is missing (a legacy V3 recording always has one, with its settings)"
        ) from error
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror})") from error
    if len(lines) < 2 or not lines[0].strip():
        raise MiniscopeFormatError(path, "has no settings row (expected a header and its values)")
    header = [name.strip() for name in lines[0].split("\t")]
    values = dict(zip(header, (v.strip() for v in lines[1].split("\t")), strict=False))
    return LegacySettings(values, tuple(_notes(path, lines[2:])))


def _text(data: bytes) -> str:
    """The MFC software wrote the PC's ANSI code page (cp1252 in most labs), or plain ASCII."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _notes(path: Path, lines: Sequence[str]) -> list[tuple[int, str]]:
    notes: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=3):
        if not line.strip() or line.startswith(_NOTES_HEADER):
            continue
        time_text, tab, text = line.partition("\t")
        if tab and time_text.strip().isdigit():
            notes.append((int(time_text), text.strip()))
        elif notes:
            notes[-1] = (notes[-1][0], f"{notes[-1][1]} {line.strip()}")
        else:
            raise MiniscopeFormatError(path, f"line {number} is not `elapsedTime<TAB>note`")
    return notes


def scope_cam_num(rows: dict[int, int], scope_frames: int, path: Path) -> int:
    """The camNum whose row count is the msCam videos' frame count: never assumed to be 0 or 1."""
    listed = ", ".join(f"camNum {cam}: {count} rows" for cam, count in sorted(rows.items()))
    if len(rows) > 2:
        raise MiniscopeFormatError(path, f"lists {len(rows)} cameras ({listed}); V3 records two")
    matches = [cam for cam, count in rows.items() if count == scope_frames]
    if not matches:
        raise MiniscopeFormatError(
            path,
            f"frame count mismatch: the {SCOPE_PREFIX}*.avi files hold {scope_frames} frames but "
            f"no camera has as many rows ({listed}), so which camNum is the Miniscope is unknown",
        )
    if len(matches) > 1:
        raise MiniscopeFormatError(
            path,
            f"cannot tell which camNum is the Miniscope: both cameras have {scope_frames} rows "
            f"({listed}), as many as the {SCOPE_PREFIX}*.avi frames",
        )
    return matches[0]


def reliable_times(sys_clock: np.ndarray, path: Path, cam: int) -> np.ndarray:
    """sysClock in ms since Record, the first row replaced when it was read from a stale start.

    A first interval that is negative or over `_STALE_FACTOR` median intervals cannot be a
    camera's first frame: it gets the second row's time minus one median interval.
    """
    times = sys_clock.astype(np.int64, copy=True)
    if len(times) < 3:
        return times
    median = float(np.median(np.diff(times[1:])))
    first = times[1] - times[0]
    if first < 0 or first > _STALE_FACTOR * max(median, 1.0):
        replaced = int(times[1] - round(median))
        warnings.warn(
            f"{path}: camNum {cam}'s first sysClock ({times[0]} ms) does not fit its second "
            f"({times[1]} ms, median interval {median:g} ms): measured from a stale start, "
            f"taken as {replaced} ms",
            UnreliableClockWarning,
            stacklevel=2,
        )
        times[0] = replaced
    return times


def camera_table(table: pd.DataFrame, cam: int, path: Path) -> pd.DataFrame:
    """One camera's rows as the timestamp table the rest of the library reads."""
    own = table[table["camNum"] == cam]
    return pd.DataFrame(
        {
            "frame": own["frameNum"].to_numpy(),
            "time_ms": reliable_times(own["sysClock"].to_numpy(), path, cam),
            "buffer": own["buffer"].to_numpy(),
            "sys_clock": own["sysClock"].to_numpy(),
        }
    )


def folder_start(folder: Path) -> StartTime | None:
    """Record's time from `M_D_YYYY/H<h>_M<m>_S<s>`, in this computer's time zone (the folder
    names carry none); None when the folders were renamed."""
    date, time = _DATE.match(folder.parent.name), _TIME.match(folder.name)
    if date is None or time is None:
        return None
    month, day, year = (int(part) for part in date.groups())
    hour, minute, second = (int(part) for part in time.groups())
    try:
        local = datetime(year, month, day, hour, minute, second).astimezone()
    except ValueError:
        return None
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    return StartTime(round(local.timestamp() * 1000), minutes, from_folder_names=True)


def _device(
    folder: Path,
    kind: DeviceKind,
    videos: tuple[Path, ...],
    dat: tuple[pd.DataFrame, int],
    settings: dict[str, Any],
) -> LegacyDevice:
    """A device from its camNum's rows of timestamp.dat (`dat`: the whole table, the camNum)."""
    table = camera_table(dat[0], dat[1], folder / TIMESTAMP_FILE)
    return LegacyDevice(
        name=SCOPE_NAME if kind == "miniscope" else CAMERA_NAME,
        kind=kind,
        folder=folder,
        settings=settings,
        videos=videos,
        video_indices=tuple(range(len(videos))),  # file k + 1 starts at row k * 1000
        timestamps_path=folder / TIMESTAMP_FILE,
        head_orientation_path=None,
        table=table.drop(columns="sys_clock"),
        cam_num=dat[1],
        first_estimated=bool(np.any(table["time_ms"][:1] != table["sys_clock"][:1])),
    )


def _scope_settings(values: dict[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "deviceType": SCOPE_TYPE,
        "compression": COMPRESSION,
        "framesPerFile": FRAMES_PER_FILE,
    }
    for key in ("excitation", "msCamExposure"):
        if values.get(key, "").lstrip("-").isdigit():
            settings[key] = int(values[key])
    return settings


def load_legacy_acquisition(
    folder: Path, label: str, videos: Mapping[str, tuple[Path, ...]]
) -> Acquisition:
    """A V3 recording folder as an acquisition with a Miniscope and, if recorded, a camera;
    `videos` are its `msCam*`/`behavCam*` files by prefix, in number order (see `inventory`)."""
    if (folder / "metaData.json").is_file():
        raise MiniscopeFormatError(
            folder,
            f"mixes a DAQ-QT metaData.json with legacy V3 files ({TIMESTAMP_FILE}, "
            f"{SETTINGS_FILE}); keep each recording in a folder of its own",
        )
    values = read_settings(folder / SETTINGS_FILE).values
    dat = folder / TIMESTAMP_FILE
    table = read_timestamp_dat(dat)
    scope_videos = videos.get(SCOPE_PREFIX, ())
    if not scope_videos:
        raise MiniscopeFormatError(folder, f"holds {TIMESTAMP_FILE} but no {SCOPE_PREFIX}1.avi")
    cams, counts = np.unique(table["camNum"].to_numpy(), return_counts=True)
    rows = {int(cam): int(count) for cam, count in zip(cams, counts, strict=True)}
    scope = scope_cam_num(rows, sum(count_frames(video) for video in scope_videos), dat)
    devices = [_device(folder, "miniscope", scope_videos, (table, scope), _scope_settings(values))]
    others = [cam for cam in rows if cam != scope]
    devices += _camera(folder, table, others, dat, videos.get(CAMERA_PREFIX, ()))
    metadata = {"animalName": values["animal"]} if values.get("animal") else {}
    if values.get("recordLength"):
        metadata["recordLength"] = values["recordLength"]
    return Acquisition(
        folder=folder,
        label=label,
        metadata=metadata,
        start=folder_start(folder),
        devices=tuple(devices),
        notes_path=folder / SETTINGS_FILE,
    )


def _camera(
    folder: Path, table: pd.DataFrame, cams: list[int], dat: Path, videos: tuple[Path, ...]
) -> list[LegacyDevice]:
    """The behaviour camera: the other camNum, with the behavCam videos (linked or embedded)."""
    if not cams:
        if videos:
            warnings.warn(
                f"{dat}: no rows for the behaviour camera, so {CAMERA_PREFIX}*.avi are left out",
                MissingDeviceWarning,
                stacklevel=3,
            )
        return []
    settings = {
        "deviceType": CAMERA_TYPE,
        "compression": COMPRESSION,
        "framesPerFile": FRAMES_PER_FILE,
    }
    return [_device(folder, "camera", videos, (table, cams[0]), settings)]


def legacy_notes(path: Path) -> list[tuple[int, str]]:
    """The notes of settings_and_notes.dat as (ms since Record, text), like notes.csv rows."""
    return [(seconds * 1000, text) for seconds, text in read_settings(path).notes]


def check_not_mixed(folder: Path, acquisitions: Sequence[Acquisition]) -> None:
    """A session is of one software: legacy V3 folders and DAQ-QT acquisitions are not merged."""
    legacy = [a.label for a in acquisitions if is_legacy_folder(a.folder)]
    if legacy and len(legacy) < len(acquisitions):
        other = next(a.label for a in acquisitions if a.label not in legacy)
        raise MiniscopeFormatError(
            folder,
            f"mixes legacy V3 recordings ({legacy[0]}) with DAQ-QT acquisitions ({other}); "
            "give each kind a session folder of its own",
        )
