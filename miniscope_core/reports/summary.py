"""What a session holds and what a conversion wrote, as plain values for files, reports and UIs.

These turn the library's objects into JSON-ready dicts, table rows and totals; frame counts are
read back from the NWB file, not taken from what the writer reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ..daq.model import Device, Session
from ..daq.timestamps import Timing, measure_timing
from ..nwb.naming import Naming
from ..timing.recordings import Recording
from ..timing.sync import session_alignment
from ..verify.validate import open_nwb_root


def plain(value: Any) -> Any:
    """`value` with NaN/inf floats as None, so that the JSON is valid for any reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _device(device: Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "kind": device.kind,
        "type": device.device_type,
        "folder": str(device.folder),
        "settings": device.settings,
        "videos": [video.name for video in device.videos],
        "timestamps": str(device.timestamps_path) if device.timestamps_path else None,
        "head_orientation": (
            str(device.head_orientation_path) if device.head_orientation_path else None
        ),
    }


def describe_session(
    session: Session, rel_path: PurePosixPath, nwb_metadata: dict[str, Any]
) -> dict[str, Any]:
    """Every acquisition and device as found on disk, the metadata the NWB file gets, and how
    its times will be aligned (the session's sync.csv, read and checked here)."""
    alignment = session_alignment(session.root)
    acquisitions = [
        {
            "label": acquisition.label,
            "folder": str(acquisition.folder),
            "start": acquisition.start.as_datetime().isoformat() if acquisition.start else None,
            "metadata": acquisition.metadata,
            "notes": str(acquisition.notes_path) if acquisition.notes_path else None,
            "devices": [_device(device) for device in acquisition.devices],
        }
        for acquisition in session.acquisitions
    ]
    return plain(
        {
            "rel_path": rel_path.as_posix(),
            "folder": str(session.root),
            "acquisitions": acquisitions,
            "nwb_metadata": nwb_metadata,
            "clock_alignment": alignment.describe() if alignment else None,
            "files": session.inventory.summary() if session.inventory else "",
            "left_out": session.inventory.rows() if session.inventory else [],
        }
    )


def device_rows(session: Session) -> list[dict[str, Any]]:
    """One row per device per acquisition: what a person checks first about the rig."""
    return [
        {
            "acquisition": acquisition.label,
            "device": device.name,
            "kind": device.kind,
            "type": device.device_type,
            "videos": len(device.videos),
            "requested_rate": str(device.settings.get("frameRate", "")),
            "gain": str(device.settings.get("gain", "")),
        }
        for acquisition in session.acquisitions
        for device in acquisition.devices
    ]


@dataclass(frozen=True)
class DeviceTiming:
    """The timestamps of one device in one acquisition, and what they say about the clock."""

    acquisition: str
    device: Device
    table: pd.DataFrame
    timing: Timing

    @property
    def dropped_fraction(self) -> float:
        expected = self.timing.n_frames + self.timing.dropped_frames
        return self.timing.dropped_frames / expected if expected else 0.0

    @property
    def decreasing_steps(self) -> int:
        """Rows whose time is earlier than the row before (equal times do occur: bursts)."""
        return int((np.diff(self.table["time_ms"].to_numpy()) < 0).sum())

    def row(self) -> dict[str, Any]:
        timing = self.timing
        return {
            "acquisition": self.acquisition,
            "device": self.device.name,
            "kind": self.device.kind,
            "frames": timing.n_frames,
            "duration_s": round(timing.duration_s, 3),
            "rate_hz": _rounded(timing.rate_hz),
            "jitter_ms": _rounded(timing.jitter_ms),
            "dropped_frames": timing.dropped_frames,
            "dropped_fraction": round(self.dropped_fraction, 4),
            "decreasing_steps": self.decreasing_steps,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def recording_timings(recordings: list[Recording]) -> list[DeviceTiming]:
    """The timings the conversion already measured, for devices with a timeStamps.csv."""
    return [
        DeviceTiming(r.acquisition.label, r.device, r.table, r.timing)
        for r in recordings
        if r.device.timestamps_path is not None
    ]


def session_timings(session: Session) -> list[DeviceTiming]:
    """Every device that has a timeStamps.csv, in acquisition order."""
    return [
        DeviceTiming(acquisition.label, device, table, measure_timing(table))
        for acquisition in session.acquisitions
        for device in acquisition.devices
        if (table := device.timestamps) is not None
    ]


@dataclass(frozen=True)
class Totals:
    """Miniscope frames over the whole session: the numbers the UI plots across sessions."""

    frames: int
    duration_s: float
    rate_hz: float
    jitter_ms: float
    dropped_frames: int

    def metadata(self) -> dict[str, int | float]:
        return {
            "frames": self.frames,
            "duration_s": round(self.duration_s, 3),
            "rate_hz": round(self.rate_hz, 3),
            "jitter_ms": round(self.jitter_ms, 3),
            "dropped_frames": self.dropped_frames,
        }


def miniscope_totals(timings: list[DeviceTiming]) -> Totals:
    """Sums over Miniscopes; the rate is frame-weighted, the jitter the worst of any device."""
    scopes = [t.timing for t in timings if t.device.kind == "miniscope"]
    frames = sum(t.n_frames for t in scopes)
    rated = [t for t in scopes if t.rate_hz]
    weight = sum(t.n_frames for t in rated)
    return Totals(
        frames=frames,
        duration_s=sum(t.duration_s for t in scopes),
        rate_hz=sum((t.rate_hz or 0.0) * t.n_frames for t in rated) / weight
        if weight
        else math.nan,
        jitter_ms=max((t.jitter_ms or 0.0 for t in scopes), default=0.0),
        dropped_frames=sum(t.dropped_frames for t in scopes),
    )


@dataclass(frozen=True)
class FrameCount:
    """Frames of one Miniscope across the session, as decoded, as timestamped and in the NWB."""

    device: str
    decoded: int
    timestamps: int
    nwb: int

    @property
    def agree(self) -> bool:
        return self.decoded == self.timestamps == self.nwb

    @property
    def nwb_holds_the_overlap(self) -> bool:
        """The writer kept the frames that have both pixels and a time: a source problem only."""
        return self.nwb == min(self.decoded, self.timestamps)


def frame_counts(
    recordings: list[Recording], nwb_path: Path, naming: Naming | None = None
) -> list[FrameCount]:
    """Per Miniscope: decoded frames, timestamp rows and frames in its NWB series (all of them:
    a series split where the frame size changed still counts); `naming` as the file was laid out."""
    in_file = _series_frames_by_device(nwb_path)
    naming = naming or Naming()
    counts = []
    for name in dict.fromkeys(r.device.name for r in recordings if r.device.kind == "miniscope"):
        mine = [r for r in recordings if r.device.name == name]
        decoded = sum(video.n_frames for r in mine for video in r.videos)
        rows = sum(len(r.table) for r in mine)  # untimed devices: one row per frame
        in_nwb = in_file.get(naming.device(mine[0]), 0)
        counts.append(FrameCount(name, decoded, rows, in_nwb))
    return counts


def _series_frames_by_device(nwb_path: Path) -> dict[str, int]:
    """Frames of every OnePhotonSeries, summed by the name of the device it links to."""
    frames: dict[str, int] = {}
    with open_nwb_root(nwb_path) as nwb:
        for series in nwb["acquisition"].values():
            if series.attrs.get("neurodata_type") == "OnePhotonSeries":
                device = _link_target(series, "device").rsplit("/", 1)[-1]
                frames[device] = frames.get(device, 0) + series["data"].shape[0]
    return frames


def _link_target(group: Any, name: str) -> str:
    """Where link `name` of an HDF5 group points, or of a Zarr group (its `zarr_link`s)."""
    if isinstance(group, h5py.Group):
        return str(group.get(name, getlink=True).path)
    return next(str(link["path"]) for link in group.attrs["zarr_link"] if link["name"] == name)
