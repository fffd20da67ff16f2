"""Behaviour: cameras (a device and its video, linked to the .avi files or embedded) and the
head orientation of each Miniscope's BNO055."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from pynwb import TimeSeries
from pynwb.device import Device
from pynwb.image import ImageSeries

from ..daq.orientation import HeadOrientation, read_orientation
from ..timing.recordings import Recording
from .base import (
    LayoutContext,
    SeriesGroup,
    acquisition_groups,
    series_groups,
    settings_text,
    timestamps_sources,
)
from .devices import changed_settings_note, device_model
from .naming import naming_of


def add_camera(ctx: LayoutContext, recordings: list[Recording], first_camera: bool) -> None:
    """A camera's device and series. Linked videos keep one series whatever their size (each
    file carries its own); embedded frames are split where the size changes."""
    first = recordings[0].device
    naming = naming_of(ctx.options)
    name = naming.device(recordings[0])
    device = Device(
        name=name,
        description=_camera_description(recordings),
        model=device_model(ctx, first.device_type),
    )
    ctx.nwbfile.add_device(device)
    embed = ctx.options.embed_cameras
    prefix = naming.camera_series(name, first_camera)
    per_acquisition, suffix = ctx.options.per_acquisition, naming.acquisition_suffix
    for group in ctx.named(series_groups(recordings, prefix, per_acquisition, embed, suffix)):
        ctx.nwbfile.add_acquisition(_camera_series(ctx, group, device))


def _camera_description(recordings: list[Recording]) -> str:
    first = recordings[0].device
    text = f"Behaviour camera {first.name!r} ({first.device_type})."
    settings = settings_text(first.settings, ())
    if settings:
        text += f" Settings: {settings}."
    return text + changed_settings_note(recordings)


def _camera_series(ctx: LayoutContext, group: SeriesGroup, device: Device) -> ImageSeries:
    recordings = group.recordings
    timestamps = H5DataIO(np.concatenate([ctx.seconds(r) for r in recordings]), compression="gzip")
    description = (
        f"Video of behaviour camera {recordings[0].device.name!r} from acquisitions "
        f"{group.labels}; timestamps from {timestamps_sources(recordings)}.{group.split_note}"
    )
    if ctx.options.embed_cameras:
        return ImageSeries(
            name=group.name,
            data=ctx.empty_dataset(group.name, recordings),
            unit="n.a.",
            timestamps=timestamps,
            device=device,
            description=description + " Frames (frame, width, height, RGB).",
        )
    files, starting = _external_files(ctx, recordings)
    return ImageSeries(
        name=group.name,
        external_file=files,
        starting_frame=starting,
        format="external",
        unit="n.a.",
        timestamps=timestamps,
        device=device,
        description=description + " Linked .avi files, paths relative to this NWB file.",
    )


def _external_files(ctx: LayoutContext, recordings: list[Recording]) -> tuple[list[str], list[int]]:
    """Paths relative to the NWB file (the pair can move together) and each file's first frame."""
    files, starting, offset = [], [], 0
    base = ctx.nwb_path.resolve().parent
    for recording in recordings:
        for segment in recording.segments:
            if segment.n_frames == 0:
                continue
            source = recording.device.videos[segment.video].resolve()
            files.append(Path(os.path.relpath(source, base)).as_posix())
            starting.append(offset)
            offset += segment.n_frames
    return files, starting


def add_head_orientation(ctx: LayoutContext, recordings: list[Recording], name: str) -> None:
    """BNO055 quaternions, one series per scope (per acquisition in that mode): it has no frames,
    so a frame size change does not split it. Empty and damaged rows are left out and counted
    in the description; a file that cannot be read is left out (`read_orientation` warns)."""
    naming = naming_of(ctx.options)
    for suffix, group in acquisition_groups(
        recordings, ctx.options.per_acquisition, naming.acquisition_suffix
    ):
        times, values, read = [], [], []
        for recording in group:
            path = recording.device.head_orientation_path
            if path is None:
                continue
            orientation = read_orientation(path)
            if orientation.problem is not None:
                continue
            read.append(orientation)
            times.append(ctx.seconds(recording, orientation.time_ms))
            values.append(orientation.quaternions)
        if not times or not sum(len(t) for t in times):
            continue
        ctx.behavior().add(
            TimeSeries(
                name=f"{name}{suffix}",
                data=H5DataIO(np.concatenate(values), compression="gzip"),
                timestamps=H5DataIO(np.concatenate(times), compression="gzip"),
                unit="n.a.",
                description=(
                    f"Head orientation of Miniscope {group[0].device.name!r} from its BNO055 "
                    "IMU as unit quaternions (w, x, y, z), Hamilton scalar-first. "
                    + _orientation_counts(read)
                ),
            )
        )


def _orientation_counts(read: list[HeadOrientation]) -> str:
    """How many rows of headOrientation.csv became samples, were empty, or were damaged."""
    samples = sum(o.samples for o in read)
    rows = sum(o.rows for o in read)
    missing = sum(o.missing for o in read)
    damaged = sum(o.damaged for o in read)
    files = f" of {len(read)} files" if len(read) > 1 else ""
    return (
        f"{samples} samples kept of {rows} rows of headOrientation.csv{files}; {missing} rows "
        "empty (0,0,0,0: no sample) and left out; "
        f"{damaged} rows damaged (not five finite numbers, or a quaternion whose norm is not "
        "within 0.1 of 1) and left out."
    )
