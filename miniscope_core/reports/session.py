"""What a session folder holds, and what is wrong with it: one description for every reader.

`inspect` prints it, `inspect --json` and the Dagster assets store it (`as_dict`), the asset
checks judge its numbers. It is read before anything is converted; a problem that would refuse
the conversion (a damaged scope row, a bad sync.csv) is listed, not raised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..collection.discovery import discover
from ..daq.avi import avi_finalised
from ..daq.device_settings import frame_rate_hz
from ..daq.model import Acquisition, Device, Session
from ..daq.orientation import read_orientation
from ..daq.timestamps import Timing, measure_timing
from ..daq.video import count_frames
from ..errors import MiniscopeFormatError, lab_messages, recorded_warnings
from ..timing.alignment import align_frames, daq_layout
from ..timing.sync import session_alignment

# The columns of a device's timing, in the order tables show them.
TIMING_FIELDS = (
    "acquisition", "device", "kind", "timestamp_rows", "duration_s", "measured_rate_hz",
    "jitter_ms", "dropped_frames", "dropped_fraction", "decreasing_steps",
)  # fmt: skip


def plain(value: Any) -> Any:
    """`value` with NaN/inf floats as None, so that the JSON is valid for any reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass
class DeviceReport:
    """One device of one acquisition: its files, its settings and what its timestamps say."""

    acquisition: str
    device: str
    kind: str
    device_type: str
    folder: str
    videos: list[str]
    timestamps: str | None
    head_orientation: str | None
    settings: dict[str, Any]
    requested_rate_hz: float | None
    timestamp_rows: int = 0
    duration_s: float = 0.0
    measured_rate_hz: float | None = None
    jitter_ms: float | None = None
    dropped_frames: int = 0
    dropped_fraction: float = 0.0
    decreasing_steps: int = 0  # rows earlier than the row before (equal times do occur: bursts)
    decoded_frames: int | None = None  # counted by decoding (`inspect`), else None
    head_orientation_samples: int | None = None

    def timing_row(self) -> dict[str, Any]:
        """The device's timing as one table row (TIMING_FIELDS)."""
        values = asdict(self)
        return {name: values[name] for name in TIMING_FIELDS}

    def rig_row(self) -> dict[str, Any]:
        """What a person checks first about the rig."""
        return {
            "acquisition": self.acquisition,
            "device": self.device,
            "kind": self.kind,
            "device_type": self.device_type,
            "videos": len(self.videos),
            "requested_rate_hz": self.requested_rate_hz,
            "gain": str(self.settings.get("gain", "")),
        }


@dataclass
class AcquisitionReport:
    label: str
    folder: str
    start: str | None
    metadata: dict[str, Any]
    notes: str | None
    devices: list[DeviceReport]


@dataclass
class SessionReport:
    root: str
    acquisitions: list[AcquisitionReport]
    problems: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # the problems that refuse conversion
    clock_alignment: str | None = None  # how the session's sync.csv will align its times
    files: str = ""  # the inventory's count: used, left out, left out that looks like data
    left_out: list[dict[str, Any]] = field(default_factory=list)  # path, reason, ...

    def refuse(self, error: MiniscopeFormatError) -> None:
        self.problems.append(str(error))
        self.refusals.append(str(error))

    @property
    def devices(self) -> list[DeviceReport]:
        return [device for acquisition in self.acquisitions for device in acquisition.devices]

    def as_dict(self) -> dict[str, Any]:
        return plain(asdict(self))


def device_report(
    acquisition: str, device: Device, table: pd.DataFrame | None, timing: Timing | None = None
) -> DeviceReport:
    """`device`'s files and settings, with the timing of `table` (measured unless given)."""
    report = DeviceReport(
        acquisition=acquisition,
        device=device.name,
        kind=device.kind,
        device_type=device.device_type,
        folder=str(device.folder),
        videos=[video.name for video in device.videos],
        timestamps=str(device.timestamps_path) if device.timestamps_path else None,
        head_orientation=str(p) if (p := device.head_orientation_path) else None,
        settings=dict(device.settings),
        requested_rate_hz=frame_rate_hz(device.settings.get("frameRate")),
    )
    if table is not None:
        _add_timing(report, table, timing or measure_timing(table))
    return report


def _add_timing(report: DeviceReport, table: pd.DataFrame, timing: Timing) -> None:
    expected = timing.n_frames + timing.dropped_frames
    report.timestamp_rows = len(table)
    report.duration_s = round(timing.duration_s, 3)
    report.measured_rate_hz = _rounded(timing.rate_hz)
    report.jitter_ms = _rounded(timing.jitter_ms)
    report.dropped_frames = timing.dropped_frames
    report.dropped_fraction = round(timing.dropped_frames / expected, 4) if expected else 0.0
    report.decreasing_steps = int((np.diff(table["time_ms"].to_numpy()) < 0).sum())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def describe_session(session: Session, decode: bool = False) -> SessionReport:
    """Acquisitions, devices, timing, files left out and problems of `session`.

    With `decode`, every video is decoded (not piped) to count frames that really exist.
    """
    with recorded_warnings() as caught:
        report = SessionReport(str(session.root), [])
        if session.inventory is not None:
            report.files = session.inventory.summary()
            report.left_out = session.inventory.rows()
        for acquisition in session.acquisitions:
            report.acquisitions.append(_acquisition(acquisition, decode, report))
        try:
            alignment = session_alignment(session.root)
            report.clock_alignment = alignment.describe() if alignment else None
        except MiniscopeFormatError as error:
            report.refuse(error)
    report.problems[:0] = lab_messages(caught)  # not the libraries' deprecation notices
    return report


def inspect_session(path: Path | str, decode: bool = True) -> SessionReport:
    """`describe_session` of the folder at `path`, its videos decoded unless `decode` is False."""
    with recorded_warnings() as caught:
        session = discover(path)
    report = describe_session(session, decode)
    report.problems[:0] = lab_messages(caught)
    return report


def _acquisition(
    acquisition: Acquisition, decode: bool, session: SessionReport
) -> AcquisitionReport:
    start = acquisition.start.as_datetime().isoformat() if acquisition.start else None
    if start is None:
        session.problems.append(
            f"{acquisition.folder}: no recording start time (no session metaData)"
        )
    devices = [
        _device(acquisition.label, device, decode, session) for device in acquisition.devices
    ]
    notes = str(acquisition.notes_path) if acquisition.notes_path else None
    return AcquisitionReport(
        acquisition.label, str(acquisition.folder), start, acquisition.metadata, notes, devices
    )


def _device(label: str, device: Device, decode: bool, session: SessionReport) -> DeviceReport:
    problems = session.problems
    table = _timestamps(device, session)
    if table is None and device.timestamps_path is None:
        problems.append(f"{device.folder}: no timeStamps.csv")
    for video in device.videos:
        if not avi_finalised(video):
            problems.append(f"{video}: AVI was never finalised (recording interrupted?)")
    report = device_report(label, device, table)
    if decode:
        rows = len(table) if table is not None else None
        report.decoded_frames = _decoded_frames(device, rows, problems)
    report.head_orientation_samples = _orientation_samples(device, problems)
    return report


def _timestamps(device: Device, session: SessionReport) -> pd.DataFrame | None:
    """The device's table; one that refuses conversion (a damaged row) is a refusal here."""
    try:
        return device.timestamps
    except MiniscopeFormatError as error:
        session.refuse(error)
        return None


def _decoded_frames(device: Device, rows: int | None, problems: list[str]) -> int:
    counts = []
    for video in device.videos:
        try:
            counts.append(count_frames(video))
        except MiniscopeFormatError as error:
            problems.append(str(error))
            counts.append(0)
    if device.timestamps_path is not None and rows is not None:
        layout = daq_layout(
            device.video_indices, counts, device.frames_per_file, rows,
            device.folder / "metaData.json",
        )  # fmt: skip
        align_frames(device.videos, counts, layout.first_rows, layout.capacities, rows,
                     device.timestamps_path, missing=layout.missing)  # fmt: skip
    return sum(counts)


def _orientation_samples(device: Device, problems: list[str]) -> int | None:
    if device.head_orientation_path is None:
        return None
    orientation = read_orientation(device.head_orientation_path)
    if orientation.problem is None and orientation.samples == orientation.damaged == 0:
        problems.append(
            f"{device.head_orientation_path}: no head-orientation samples ({orientation.summary()})"
        )
    return orientation.samples
