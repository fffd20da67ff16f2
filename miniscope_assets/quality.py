"""Frame counts of a converted session, as plain results (the Dagster checks wrap these).

The NWB file is checked by reading it back, not by trusting what the writer reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py

from miniscope_core.nwb.base import camel
from miniscope_core.recordings import Recording


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


def frame_counts(recordings: list[Recording], nwb_path: Path) -> list[FrameCount]:
    """Per Miniscope: decoded frames, timestamp rows and frames in its NWB series (all of them:
    a series split where the frame size changed still counts)."""
    in_file = _series_frames_by_device(nwb_path)
    counts = []
    for name in dict.fromkeys(r.device.name for r in recordings if r.device.kind == "miniscope"):
        mine = [r for r in recordings if r.device.name == name]
        decoded = sum(video.n_frames for r in mine for video in r.videos)
        rows = sum(len(r.table) for r in mine)  # untimed devices: one row per frame
        counts.append(FrameCount(name, decoded, rows, in_file.get(camel(name), 0)))
    return counts


def _series_frames_by_device(nwb_path: Path) -> dict[str, int]:
    """Frames of every OnePhotonSeries, summed by the name of the device it links to."""
    frames: dict[str, int] = {}
    with h5py.File(nwb_path, "r") as nwb:
        for series in nwb["acquisition"].values():
            if series.attrs.get("neurodata_type") == "OnePhotonSeries":
                device = series.get("device", getlink=True).path.rsplit("/", 1)[-1]
                frames[device] = frames.get(device, 0) + series["data"].shape[0]
    return frames
