"""Quality checks of a converted session, as plain results (the Dagster checks wrap these).

The NWB file is checked by reading it back, not by trusting what the writer reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import pynwb
from nwbinspector import Importance, inspect_nwbfile

from miniscope_core.chunks import ChunkFile
from miniscope_core.nwb_layout import camel
from miniscope_core.session import Session
from miniscope_core.timestamps import read_timestamps


@dataclass(frozen=True)
class NwbValidation:
    """pynwb schema errors, nwbinspector CRITICAL findings, and all findings by importance."""

    schema_errors: tuple[str, ...]
    critical: tuple[str, ...]
    findings: dict[str, int]

    @property
    def passed(self) -> bool:
        return not self.schema_errors and not self.critical


def validate_nwb(path: Path) -> NwbValidation:
    errors = pynwb.validate(path=str(path))
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    critical = tuple(
        f"{m.check_function_name}: {m.message}"
        for m in messages
        if m.importance == Importance.CRITICAL
    )
    findings = Counter(m.importance.name for m in messages)
    return NwbValidation(tuple(str(e) for e in errors), critical, dict(findings))


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
    session: Session, videos: dict[Path, ChunkFile], nwb_path: Path
) -> list[FrameCount]:
    """Per Miniscope: decoded frames, timeStamps.csv rows and frames in its NWB series."""
    counts = []
    with h5py.File(nwb_path, "r") as nwb:
        for name in session.device_names("miniscope"):
            decoded = rows = 0
            for device in (d for a in session.acquisitions for d in a.devices if d.name == name):
                frames = sum(videos[video].n_frames for video in device.videos)
                decoded += frames
                path = device.timestamps_path
                rows += len(read_timestamps(path)) if path else frames  # untimed: one per frame
            series = nwb.get(f"acquisition/OnePhotonSeries{camel(name)}/data")
            counts.append(FrameCount(name, decoded, rows, 0 if series is None else series.shape[0]))
    return counts
