"""What a session folder holds, and what is wrong with it, before anything is converted."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..collection.discovery import discover
from ..daq.device_settings import frame_rate_hz
from ..daq.model import Acquisition, Device
from ..daq.orientation import read_orientation
from ..daq.timestamps import measure_timing
from ..daq.video import avi_finalised, count_frames
from ..errors import MiniscopeFormatError, lab_messages, recorded_warnings
from ..timing.alignment import align_frames, daq_layout
from ..timing.sync import session_alignment


@dataclass
class DeviceReport:
    name: str
    kind: str
    device_type: str
    folder: str
    videos: int
    timestamp_rows: int
    decoded_frames: int | None
    duration_s: float
    requested_rate_hz: float | None
    measured_rate_hz: float | None
    jitter_ms: float | None
    dropped_frames: int
    head_orientation_samples: int | None


@dataclass
class AcquisitionReport:
    label: str
    start: str | None
    devices: list[DeviceReport]


@dataclass
class SessionReport:
    root: str
    acquisitions: list[AcquisitionReport]
    problems: list[str] = field(default_factory=list)
    clock_alignment: str | None = None  # how the session's sync.csv will align its times
    files: str = ""  # the inventory's count: used, left out, left out that looks like data
    left_out: list[dict[str, Any]] = field(default_factory=list)  # path, reason, ...

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def inspect_session(path: Path | str, decode: bool = True) -> SessionReport:
    """Acquisitions, devices, frames, duration, measured rate, dropped frames and problems.

    With `decode`, every video is decoded (not piped) to count frames that really exist.
    """
    with recorded_warnings() as caught:
        session = discover(path)
        report = SessionReport(str(session.root), [])
        if session.inventory is not None:
            report.files = session.inventory.summary()
            report.left_out = session.inventory.rows()
        for acquisition in session.acquisitions:
            report.acquisitions.append(_acquisition(acquisition, decode, report.problems))
        try:
            alignment = session_alignment(session.root)
            report.clock_alignment = alignment.describe() if alignment else None
        except MiniscopeFormatError as error:
            report.problems.append(str(error))
    report.problems[:0] = lab_messages(caught)  # not the libraries' deprecation notices
    return report


def _acquisition(acquisition: Acquisition, decode: bool, problems: list[str]) -> AcquisitionReport:
    start = acquisition.start.as_datetime().isoformat() if acquisition.start else None
    if start is None:
        problems.append(f"{acquisition.folder}: no recording start time (no session metaData)")
    devices = [_device(device, decode, problems) for device in acquisition.devices]
    return AcquisitionReport(acquisition.label, start, devices)


def _device(device: Device, decode: bool, problems: list[str]) -> DeviceReport:
    table = _timestamps(device, problems)
    timing = measure_timing(table) if table is not None else None
    if table is None and device.timestamps_path is None:
        problems.append(f"{device.folder}: no timeStamps.csv")
    for video in device.videos:
        if not avi_finalised(video):
            problems.append(f"{video}: AVI was never finalised (recording interrupted?)")
    rows = len(table) if table is not None else None
    decoded = _decoded_frames(device, rows, problems) if decode else None
    return DeviceReport(
        name=device.name,
        kind=device.kind,
        device_type=device.device_type,
        folder=str(device.folder),
        videos=len(device.videos),
        timestamp_rows=len(table) if table is not None else 0,
        decoded_frames=decoded,
        duration_s=timing.duration_s if timing else 0.0,
        requested_rate_hz=frame_rate_hz(device.settings.get("frameRate")),
        measured_rate_hz=timing.rate_hz if timing else None,
        jitter_ms=timing.jitter_ms if timing else None,
        dropped_frames=timing.dropped_frames if timing else 0,
        head_orientation_samples=_orientation_samples(device, problems),
    )


def _timestamps(device: Device, problems: list[str]) -> pd.DataFrame | None:
    """The device's table; one that refuses conversion (a damaged row) is a problem here."""
    try:
        return device.timestamps
    except MiniscopeFormatError as error:
        problems.append(str(error))
        return None


def _decoded_frames(device: Device, rows: int | None, problems: list[str]) -> int:
    counts = []
    for video in device.videos:
        try:
            counts.append(count_frames(video))
        except MiniscopeFormatError as error:
            problems.append(str(error))
            counts.append(0)
    if rows is not None and device.timestamps_path is not None:
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
