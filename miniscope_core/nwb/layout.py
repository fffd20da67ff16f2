"""Build the in-memory NWBFile: devices, planes, series and tables, in NeuroConv's familiar layout.

Pixel data is not touched here: each image series gets an empty, chunked, deflate-filtered
dataset, and `Fill` records say which chunk files are copied into it once the file is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pynwb import NWBFile
from pynwb.file import Subject

from ..clock import SessionClock
from ..recordings import Recording
from .base import Layout, LayoutContext, LayoutOptions
from .behavior import add_camera
from .imaging import add_miniscope
from .intervals import add_acquisition_table, add_device_table, add_dropped_frames, add_notes


def build_layout(
    recordings: list[Recording],
    metadata: dict[str, Any],
    clock: SessionClock,
    nwb_path: Path,
    options: LayoutOptions,
) -> Layout:
    """The whole NWBFile for a session's recordings (frames still to be copied)."""
    nwbfile = _nwbfile(metadata, clock.start, options)
    ctx = LayoutContext(nwbfile, metadata, clock, nwb_path, options)
    for name in _names(recordings, "miniscope"):
        add_miniscope(ctx, [r for r in recordings if r.device.name == name])
    for name in _names(recordings, "camera"):
        add_camera(ctx, [r for r in recordings if r.device.name == name])
    add_acquisition_table(ctx, recordings)
    add_device_table(ctx, recordings)
    add_dropped_frames(ctx, recordings)
    add_notes(ctx, recordings)
    return Layout(ctx.nwbfile, ctx.fills)


def _names(recordings: list[Recording], kind: str) -> list[str]:
    """Device names of one kind, in the order they first appear."""
    return list(dict.fromkeys(r.device.name for r in recordings if r.device.kind == kind))


def _nwbfile(metadata: dict[str, Any], start: datetime, options: LayoutOptions) -> NWBFile:
    """The file with the user's NWBFile fields, subject and the converter's provenance."""
    fields = dict(metadata.get("NWBFile") or {})
    fields.pop("session_start_time", None)
    fields.setdefault("identifier", str(uuid.uuid4()))
    for key in ("experimenter", "keywords", "related_publications"):
        if isinstance(fields.get(key), str):
            fields[key] = [fields[key]]
    if options.source_script:
        fields["source_script"] = options.source_script
    if options.source_script_file_name:
        fields["source_script_file_name"] = options.source_script_file_name
    nwbfile = NWBFile(session_start_time=start, **fields)
    subject = metadata.get("Subject")
    if subject:
        nwbfile.subject = Subject(**subject)
    return nwbfile
