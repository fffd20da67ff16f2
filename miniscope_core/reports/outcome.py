"""What a conversion wrote: Miniscope totals over a session, and frames per scope read back.

Frame counts are read back from the NWB file, not taken from what the writer reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from ..nwb.naming import Naming
from ..timing.recordings import Recording
from ..verify.validate import open_nwb_root
from .session import DeviceReport, device_report


def recording_reports(recordings: list[Recording]) -> list[DeviceReport]:
    """The timing the conversion already measured, for devices with a timeStamps.csv."""
    return [
        device_report(r.acquisition.label, r.device, r.table, r.timing)
        for r in recordings
        if r.device.timestamps_path is not None
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


def miniscope_totals(devices: list[DeviceReport]) -> Totals:
    """Sums over Miniscopes; the rate is frame-weighted, the jitter the worst of any device."""
    scopes = [d for d in devices if d.kind == "miniscope"]
    frames = sum(d.timestamp_rows for d in scopes)
    rated = [d for d in scopes if d.measured_rate_hz]
    weight = sum(d.timestamp_rows for d in rated)
    rate = sum((d.measured_rate_hz or 0.0) * d.timestamp_rows for d in rated)
    return Totals(
        frames=frames,
        duration_s=sum(d.duration_s for d in scopes),
        rate_hz=rate / weight if weight else math.nan,
        jitter_ms=max((d.jitter_ms or 0.0 for d in scopes), default=0.0),
        dropped_frames=sum(d.dropped_frames for d in scopes),
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
