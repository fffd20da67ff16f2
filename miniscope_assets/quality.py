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

from miniscope_core.nwb_layout import camel
from miniscope_core.recordings import Recording


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


def frame_counts(recordings: list[Recording], nwb_path: Path) -> list[FrameCount]:
    """Per Miniscope: decoded frames, timestamp rows and frames in its NWB series."""
    counts = []
    with h5py.File(nwb_path, "r") as nwb:
        for name in dict.fromkeys(
            r.device.name for r in recordings if r.device.kind == "miniscope"
        ):
            mine = [r for r in recordings if r.device.name == name]
            decoded = sum(video.n_frames for r in mine for video in r.videos)
            rows = sum(len(r.table) for r in mine)  # untimed devices: one row per frame
            series = nwb.get(f"acquisition/OnePhotonSeries{camel(name)}/data")
            counts.append(FrameCount(name, decoded, rows, 0 if series is None else series.shape[0]))
    return counts
