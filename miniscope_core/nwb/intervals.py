"""Tables on the session clock: acquisitions, each device's settings per acquisition, dropped
frames, and the notes typed while recording."""

from __future__ import annotations

from typing import Any

import numpy as np
from pynwb.epoch import TimeIntervals
from pynwb.event import EventsTable

from ..daq.device_settings import frame_rate_hz, gain_factor, number, saved_roi
from ..daq.notes import read_notes_file
from ..timing.recordings import Recording
from .base import DEVICE_TABLE, LayoutContext

_DEVICE_COLUMNS = {
    "acquisition": "Acquisition folder, relative to the session folder.",
    "device": "Device name as in the acquisition's metaData.json.",
    "device_type": "deviceType in the device's metaData.json (e.g. Miniscope_V4_BNO, WebCam).",
    "frames": "Frames of this device and acquisition in this file (0: timestamps, no video).",
    "frame_rate_hz": "Requested frame rate (frameRate, '30FPS' -> 30); NaN if not stored.",
    "measured_rate_hz": "Frame rate measured from timeStamps.csv (gaps left out); NaN if unknown.",
    "gain": "Sensor gain as a number ('Low'/'Medium'/'High' -> 1/2/3.5); NaN if unknown.",
    "led0": "Excitation LED power in percent (led0); NaN if not stored.",
    "ewl": "Electrowetting lens (focus) setting (ewl); NaN if not stored.",
    "roi_width": "Width of the ROI the video was saved at, in pixels; -1 if no ROI is stored.",
    "roi_height": "Height of the ROI the video was saved at, in pixels; -1 if no ROI is stored.",
    "roi_left": "Left edge of the saved ROI on the sensor, in pixels; -1 if not stored.",
    "roi_top": "Top edge of the saved ROI on the sensor, in pixels; -1 if not stored.",
    "frames_per_file": "framesPerFile: frames per video file; -1 if not stored or not a count.",
    "frame_width": "Width of the decoded frames in pixels; -1 if not decoded (linked videos).",
    "frame_height": "Height of the decoded frames in pixels; -1 if not decoded (linked videos).",
}


def add_acquisition_table(ctx: LayoutContext, recordings: list[Recording]) -> None:
    """Where each acquisition begins and ends on the session clock."""
    table = TimeIntervals(
        name="acquisitions", description="One row per acquisition (one press of Record)."
    )
    table.add_column("label", "Acquisition folder, relative to the session folder.")
    spans: dict[str, list[float]] = {}
    for recording in recordings:
        if recording.n_frames:
            times = ctx.seconds(recording)
            span = spans.setdefault(recording.acquisition.label, [times[0], times[-1]])
            span[0], span[1] = min(span[0], times[0]), max(span[1], times[-1])
    for label, (begin, end) in spans.items():
        table.add_row(start_time=float(begin), stop_time=float(end), label=label)
    if spans:
        ctx.nwbfile.add_time_intervals(table)


def add_device_table(ctx: LayoutContext, recordings: list[Recording]) -> None:
    """Settings, frame counts and rates per acquisition and device, machine-readable, since
    gain, LED power, focus, rate and ROI may change between acquisitions of one session.

    A device with timestamps but no decodable frame still gets a row (frames 0, its timestamp
    rows' span) so its settings are on record; one without any time has nowhere to go.
    """
    rows = [row for row in (_device_row(ctx, r) for r in recordings) if row is not None]
    if not rows:
        return
    table = TimeIntervals(
        name=DEVICE_TABLE,
        description="One row per acquisition and device: from its first to its last frame, "
        "with its settings as numbers (metaData.json), frame counts and measured rate.",
    )
    for column, description in _DEVICE_COLUMNS.items():
        table.add_column(column, description)
    for row in sorted(rows, key=lambda row: (row["start_time"], row["stop_time"])):
        table.add_row(**row)
    ctx.nwbfile.add_time_intervals(table)


def _device_row(ctx: LayoutContext, recording: Recording) -> dict[str, Any] | None:
    times = _device_times(ctx, recording)
    if times is None:
        return None
    device, settings = recording.device, recording.device.settings
    width, height = recording.frame_shape[:2] or (-1, -1)
    return {
        "start_time": float(times.min()),
        "stop_time": float(times.max()),
        "acquisition": recording.acquisition.label,
        "device": device.name,
        "device_type": device.device_type,
        "frames": recording.n_frames,
        "frame_rate_hz": _or_nan(frame_rate_hz(settings.get("frameRate"))),
        "measured_rate_hz": _or_nan(recording.timing.rate_hz),
        "gain": _or_nan(gain_factor(settings.get("gain"))),
        "led0": _or_nan(number(settings.get("led0"))),
        "ewl": _or_nan(number(settings.get("ewl"))),
        **{f"roi_{key}": _or_minus_one(value) for key, value in saved_roi(settings).items()},
        "frames_per_file": _or_minus_one(device.frames_per_file),
        "frame_width": int(width),
        "frame_height": int(height),
    }


def _device_times(ctx: LayoutContext, recording: Recording) -> np.ndarray | None:
    """Session-clock times of the frames in the file, else of the timestamp rows, else None."""
    if recording.n_frames:
        return ctx.seconds(recording)
    if len(recording.table):
        return ctx.seconds(recording, recording.table["time_ms"].to_numpy())
    return None


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _or_minus_one(value: float | None) -> int:
    """Integer columns have no NaN: -1 stands for "not stored"."""
    return -1 if value is None else int(value)


def add_dropped_frames(ctx: LayoutContext, recordings: list[Recording]) -> None:
    """Gaps in each device's timestamps, as intervals with the number of frames missing."""
    table = TimeIntervals(
        name="dropped_frames",
        description="Intervals where frames were lost (timestamp gaps or DAQ frame jumps).",
    )
    table.add_column("device", "Device name.")
    table.add_column("acquisition", "Acquisition folder label.")
    table.add_column("missing_frames", "Estimated number of frames lost.")
    rows = []
    for recording in recordings:
        for gap in recording.timing.gaps:
            begin, end = ctx.seconds(recording, np.array([gap.start_ms, gap.stop_ms]))
            rows.append((float(begin), float(end), recording, gap.missing))
    for begin, end, recording, missing in sorted(rows, key=lambda row: row[:2]):
        table.add_row(
            start_time=begin,
            stop_time=end,
            device=recording.device.name,
            acquisition=recording.acquisition.label,
            missing_frames=missing,
        )
    if len(table):
        ctx.nwbfile.add_time_intervals(table)


def add_notes(ctx: LayoutContext, recordings: list[Recording]) -> None:
    """notes.csv rows of every acquisition, in one events table with an annotation column.
    Lines that do not start with a time are left out (`read_notes_file` warns of them)."""
    rows: list[tuple[float, str]] = []
    seen = set()
    skipped = 0
    for recording in recordings:
        acquisition = recording.acquisition
        if acquisition.notes_path is None or acquisition.label in seen:
            continue
        seen.add(acquisition.label)
        notes = read_notes_file(acquisition.notes_path)
        skipped += notes.skipped
        for time_ms, text in notes.rows:
            rows.append((float(ctx.seconds(recording, np.array([time_ms]))[0]), text))
    if not rows:
        return
    left_out = (
        f" {skipped} line{'s' if skipped != 1 else ''} that did not start with a time "
        f"{'were' if skipped != 1 else 'was'} left out."
        if skipped
        else ""
    )
    table = EventsTable(
        name="notes",
        description="Notes typed while recording, and setting changes the DAQ logged." + left_out,
        source_description="notes.csv of each acquisition (settings_and_notes.dat for legacy V3)",
    )
    table.add_column("annotation", "The note text.")
    for time_s, text in sorted(rows, key=lambda row: row[0]):
        table.add_row(timestamp=time_s, annotation=text)
    ctx.nwbfile.add_events_table(table)
