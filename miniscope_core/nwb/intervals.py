"""Tables on the session clock: acquisitions, dropped frames, and the notes typed while
recording."""

from __future__ import annotations

import numpy as np
from pynwb.epoch import TimeIntervals
from pynwb.event import EventsTable

from ..notes import read_notes
from ..recordings import Recording
from .base import LayoutContext


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
    """notes.csv rows of every acquisition, in one events table with an annotation column."""
    rows: list[tuple[float, str]] = []
    seen = set()
    for recording in recordings:
        acquisition = recording.acquisition
        if acquisition.notes_path is None or acquisition.label in seen:
            continue
        seen.add(acquisition.label)
        for time_ms, text in read_notes(acquisition.notes_path):
            rows.append((float(ctx.seconds(recording, np.array([time_ms]))[0]), text))
    if not rows:
        return
    table = EventsTable(
        name="notes",
        description="Notes typed while recording, and setting changes the DAQ logged.",
        source_description="notes.csv of each acquisition",
    )
    table.add_column("annotation", "The note text.")
    for time_s, text in sorted(rows, key=lambda row: row[0]):
        table.add_row(timestamp=time_s, annotation=text)
    ctx.nwbfile.add_events_table(table)
