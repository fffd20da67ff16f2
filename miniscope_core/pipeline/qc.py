"""The QC report of one conversion: what a scientist looks at to know whether a recording is
good, put together from what the conversion already has (the frame statistics gathered while
decoding, the recordings and the clock of the file) and written beside the NWB file.

Nothing here decodes a scope video again; one behaviour-camera frame per acquisition is read.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pynwb.ophys import OnePhotonSeries

from ..daq.avi import avi_index
from ..daq.model import Session
from ..daq.orientation import read_orientation
from ..daq.video import open_video
from ..errors import MiniscopeFormatError
from ..nwb.base import Layout
from ..nwb.provenance import converter
from ..quality.model import (
    AcquisitionSettings,
    CameraFrame,
    DeviceTimeline,
    HeadOrientation,
    ImagingSeries,
    SessionQC,
    Thresholds,
    Validation,
)
from ..timing.recordings import Recording
from .stages import Assembly

REPORT_SUFFIX = ".qc.html"


def give_back_heap() -> None:
    """Return the heap's free pages to the OS (glibc's `malloc_trim`; elsewhere nothing).

    glibc keeps what the decoder threads freed in their heaps and only gives back a heap's top:
    trimmed before the report (about 10 MB after decoding), the report's own imports and
    drawing reuse those pages instead of raising the conversion's peak.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # not POSIX, or not glibc's name
        return None
    if not glibc:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def report_path(output: Path) -> Path:
    """The report beside `output`, named after it whole (`x.nwb` -> `x.nwb.qc.html`), so
    an HDF5 file and a Zarr store of one session side by side keep a report each."""
    return output.with_name(output.name + REPORT_SUFFIX)


def session_qc(
    session: Session,
    done: Assembly,
    output: Path,
    validation: Validation | None = None,
    thresholds: Thresholds = Thresholds(),
) -> SessionQC:
    """Everything the page shows of `session` converted to `output`; `validation` defaults to
    the conversion's read-back."""
    recordings, layout = done.recordings, done.layout
    if validation is None and done.verification is not None:
        check = done.verification
        validation = Validation(check.passed, tuple(check.problems), "read-back of every series")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conversion has reported them already
        orientation = _orientation(recordings, layout)
    return SessionQC(
        session=str(session.root),
        nwb_file=str(output),
        imaging=_imaging(done),
        timelines=_timelines(recordings, layout),
        orientation=orientation,
        camera_frames=_camera_frames(recordings, layout),
        settings=[
            AcquisitionSettings(acquisition.label, device.name, dict(device.settings))
            for acquisition in session.acquisitions
            for device in acquisition.devices
        ],
        validation=validation,
        thresholds=thresholds,
        made_by=converter(),
    )


def _imaging(done: Assembly) -> list[ImagingSeries]:
    series = []
    for name, value in done.layout.nwbfile.acquisition.items():
        summary = done.frame_stats.get(name)
        if not isinstance(value, OnePhotonSeries) or summary is None:
            continue
        fills = [part for part in done.layout.fills if part.dataset_path.split("/")[1] == name]
        sources = {part.video.source for part in fills}
        mine = [r for r in done.recordings if {v.source for v in r.videos} & sources]
        labels = dict.fromkeys(r.acquisition.label for r in mine)
        times = np.asarray(getattr(value.timestamps, "data", value.timestamps))
        starts = np.cumsum([0, *(r.n_frames for r in mine)])[:-1].tolist()
        series.append(
            ImagingSeries.from_summary(
                name, value.device.name, ", ".join(labels), summary, times, starts=starts
            )
        )
    return series


def _by_device(recordings: list[Recording]) -> dict[str, list[Recording]]:
    devices: dict[str, list[Recording]] = {}
    for recording in recordings:
        devices.setdefault(recording.device.name, []).append(recording)
    return devices


def _timelines(recordings: list[Recording], layout: Layout) -> list[DeviceTimeline]:
    timelines = []
    for name, mine in _by_device(recordings).items():
        timed = [r for r in mine if r.device.timestamps_path is not None and r.n_frames]
        if timed:
            times = [layout.clock.seconds(r) for r in timed]
            counters = [_daq_frames(r) for r in timed]
            timelines.append(DeviceTimeline.from_acquisitions(name, times, counters))
    return timelines


def _daq_frames(recording: Recording) -> np.ndarray | None:
    """The DAQ's frame counter of the kept frames, where the table has one."""
    if "daq_frame" not in recording.table:
        return None
    return recording.table["daq_frame"].to_numpy()[: recording.n_frames]


def _orientation(recordings: list[Recording], layout: Layout) -> list[HeadOrientation]:
    found = []
    for name, mine in _by_device(recordings).items():
        times, quaternions = [], []
        for recording in mine:
            path = recording.device.head_orientation_path
            if path is None:
                continue
            read = read_orientation(path)
            if read.samples:
                times.append(layout.clock.seconds(recording, read.time_ms))
                quaternions.append(read.quaternions)
        if times:
            found.append(HeadOrientation(name, np.concatenate(times), np.concatenate(quaternions)))
    return found


def _camera_frames(recordings: list[Recording], layout: Layout) -> list[CameraFrame]:
    """The middle frame of each camera's first video in each acquisition."""
    frames = []
    for recording in recordings:
        if recording.device.kind != "camera" or not recording.n_frames:
            continue
        first = recording.segments[0]
        index = _keyframe_near(recording.videos[first.video].source, first.n_frames // 2)
        image = _frame(recording.videos[first.video].source, index)
        if image is not None:
            time = float(layout.clock.seconds(recording)[index])
            label = recording.acquisition.label
            frames.append(CameraFrame(recording.device.name, label, image, time))
    return frames


def _keyframe_near(source: Path, wanted: int) -> int:
    """The keyframe at or before frame `wanted` (decoding can start only there), else 0."""
    try:
        index = avi_index(source)
    except (OSError, struct.error):
        return 0
    if index is None or not 0 < wanted < index.n_frames:
        return 0
    starts = np.flatnonzero(index.keyframes[: wanted + 1])
    return int(starts[-1]) if len(starts) else 0


def _frame(source: Path, index: int) -> np.ndarray | None:
    """Frame `index` (a keyframe) of a colour video, None if it cannot be decoded."""
    try:
        with open_video(source, color=True, first=index) as stream:
            frame = np.empty(stream.frame_shape, np.uint8)
            return frame if stream.read_into(frame) else None
    except MiniscopeFormatError:
        return None
