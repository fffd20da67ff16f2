"""Build the in-memory NWBFile: devices, planes, series and tables, in NeuroConv's familiar layout.

Pixel data is not touched here: each image series gets an empty, chunked, deflate-filtered
dataset, and `Fill` records say which chunk files are copied into it once the file is written.
"""

from __future__ import annotations

import uuid
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pynwb import NWBFile
from pynwb.file import Subject
from pynwb.image import ImageSeries
from pynwb.ophys import ImagingPlane

from ..errors import MiniscopeWarning
from ..timing.clock import SessionClock
from ..timing.recordings import Recording
from .base import Layout, LayoutContext, LayoutOptions
from .behavior import add_camera
from .imaging import add_miniscope
from .intervals import add_acquisition_table, add_device_table, add_dropped_frames, add_notes


def modalities(recordings: list[Recording]) -> tuple[str, ...]:
    """The modalities `dandi organize` names the file by (the pynwb modules of its types), as
    `build_layout` will lay it out: a scope always gets its imaging plane (`ophys`), a camera
    an ImageSeries (`image`) once it has a frame; the rest are base, device and table types."""
    types = {ImagingPlane for r in recordings if r.device.kind == "miniscope"}
    types |= {ImageSeries for r in recordings if r.device.kind == "camera" and r.n_frames}
    return tuple(sorted(t.__module__.split(".")[1] for t in types))


def build_layout(
    recordings: list[Recording],
    metadata: dict[str, Any],
    clock: SessionClock,
    nwb_path: Path,
    options: LayoutOptions,
) -> Layout:
    """The whole NWBFile for a session's recordings (frames still to be copied)."""
    nwbfile = _nwbfile(
        metadata, clock.start, options, _conversion_notes(recordings, clock, options)
    )
    ctx = LayoutContext(nwbfile, metadata, clock, nwb_path, options)
    for name in _names(recordings, "miniscope"):
        add_miniscope(ctx, [r for r in recordings if r.device.name == name])
    for index, name in enumerate(_names(recordings, "camera")):
        add_camera(ctx, [r for r in recordings if r.device.name == name], index == 0)
    add_acquisition_table(ctx, recordings)
    add_device_table(ctx, recordings)
    add_dropped_frames(ctx, recordings)
    add_notes(ctx, recordings)
    ctx.check_renames()
    return Layout(ctx.nwbfile, ctx.fills, clock)


def _names(recordings: list[Recording], kind: str) -> list[str]:
    """Device names of one kind, in the order they first appear."""
    return list(dict.fromkeys(r.device.name for r in recordings if r.device.kind == kind))


def _conversion_notes(
    recordings: list[Recording], clock: SessionClock, options: LayoutOptions
) -> list[str]:
    """What a reader of the file must know about how it was made: a stub, aligned times."""
    notes = []
    if options.stub_frames is not None:
        notes.append(
            f"Stub conversion: only the first {options.stub_frames} frames of each device in each "
            "acquisition; for checking metadata and layout, not for analysis."
        )
    if clock.alignment is not None:
        local = [clock.local_seconds(r) for r in recordings if r.n_frames]
        times = np.concatenate(local) if local else np.zeros(0)
        outside = clock.alignment.extrapolated(times)
        if outside:
            warnings.warn(
                f"{clock.alignment.source}: {outside} of {len(times)} frame times lie outside "
                "the sync pairs; their aligned times are extrapolated",
                MiniscopeWarning,
                stacklevel=2,
            )
        notes.append(clock.alignment.describe(outside))
    if options.left_out:
        notes.append(
            f"Left out of this file ({len(options.left_out)} entries of the session folder, "
            "with the reason):\n" + "\n".join(f"- {line}" for line in options.left_out)
        )
    return notes


def _nwbfile(
    metadata: dict[str, Any], start: datetime, options: LayoutOptions, notes: list[str]
) -> NWBFile:
    """The file with the user's NWBFile fields, subject, the converter's provenance and notes."""
    fields = dict(metadata.get("NWBFile") or {})
    if notes:
        fields["notes"] = "\n".join([fields["notes"], *notes] if fields.get("notes") else notes)
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
