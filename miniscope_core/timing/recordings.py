"""One device in one acquisition, its frames matched to absolute times.

Every frame's time is its acquisition's start (`msecSinceEpoch`) plus its own `timeStamps.csv`
value, in integer milliseconds, so gaps between acquisitions stay real and no device is shifted
against another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..daq.device_settings import frame_rate_hz
from ..daq.model import Acquisition, Device, Session
from ..daq.timestamps import Timing, measure_timing, regular_timestamps_ms
from ..daq.video import VideoInfo
from ..errors import MiniscopeFormatError
from .alignment import (
    FileLayout,
    Segment,
    align_frames,
    daq_layout,
    selected_rows,
    sequential_layout,
)


@dataclass(frozen=True)
class Recording:
    """Aligned frames of one device in one acquisition."""

    acquisition: Acquisition
    device: Device
    videos: tuple[VideoInfo, ...]
    segments: tuple[Segment, ...]
    time_ms: np.ndarray  # per kept frame, ms since the acquisition start (may be negative)
    timing: Timing
    table: pd.DataFrame

    @property
    def n_frames(self) -> int:
        return len(self.time_ms)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        for video in self.videos:
            if video.frame_shape:
                return video.frame_shape
        return ()

    def start_ms(self, fallback_ms: int) -> int:
        """The acquisition's start (ms since the Unix epoch); `fallback_ms` if never recorded."""
        return self.acquisition.start.epoch_ms if self.acquisition.start else fallback_ms

    def head(self, n_frames: int) -> Recording:
        """Only the first `n_frames` kept frames (a stub run); timing stays the whole device's."""
        segments, left = [], n_frames
        for segment in self.segments:
            segments.append(replace(segment, n_frames=min(segment.n_frames, left)))
            left -= segments[-1].n_frames
        return replace(self, segments=tuple(segments), time_ms=self.time_ms[:n_frames])


def build_recording(
    acquisition: Acquisition,
    device: Device,
    videos: Mapping[Path, VideoInfo],
    strict: bool = False,
) -> Recording:
    """Match the decoded frames of `device` to its timestamp rows, file by file."""
    chunk_files = tuple(videos[path] for path in device.videos)
    counts = [video.n_frames for video in chunk_files]
    _check_shapes(chunk_files)
    table = device.timestamps
    if table is None or device.timestamps_path is None:
        return _untimed_recording(acquisition, device, chunk_files, counts)
    layout = _layout(device, counts, len(table))
    segments = align_frames(
        device.videos, counts, layout.first_rows, layout.capacities, len(table),
        device.timestamps_path, strict, layout.missing,
    )  # fmt: skip
    rows = selected_rows(segments)
    return Recording(
        acquisition=acquisition,
        device=device,
        videos=chunk_files,
        segments=tuple(segments),
        time_ms=table["time_ms"].to_numpy()[rows],
        timing=measure_timing(table),
        table=table,
    )


def _layout(device: Device, counts: list[int], n_rows: int) -> FileLayout:
    """Where each of `device`'s videos starts among its rows: DAQ numbering, or in sequence."""
    if device.sequential:
        return FileLayout(*sequential_layout(counts))
    return daq_layout(device.video_indices, counts, device.frames_per_file, n_rows,
                      device.folder / "metaData.json")  # fmt: skip


def _untimed_recording(
    acquisition: Acquisition, device: Device, videos: tuple[VideoInfo, ...], counts: list[int]
) -> Recording:
    """A device without timeStamps.csv: regular times from the requested frame rate."""
    rate = frame_rate_hz(device.settings.get("frameRate"))
    if rate is None:
        raise MiniscopeFormatError(
            device.folder, "has no timeStamps.csv and no frameRate in metaData.json"
        )
    total = sum(counts)
    time_ms = regular_timestamps_ms(total, rate)
    table = pd.DataFrame({"frame": np.arange(total), "time_ms": time_ms})
    first_rows, _ = sequential_layout(counts)
    segments = [
        Segment(number, count, first)
        for number, (count, first) in enumerate(zip(counts, first_rows, strict=True))
    ]
    return Recording(
        acquisition, device, videos, tuple(segments), time_ms, measure_timing(table), table
    )


def _check_shapes(videos: tuple[VideoInfo, ...]) -> None:
    shapes = {video.frame_shape for video in videos if video.frame_shape}
    if len(shapes) > 1:
        first = next(v for v in videos if v.frame_shape)
        odd = next(v for v in videos if v.frame_shape and v.frame_shape != first.frame_shape)
        raise MiniscopeFormatError(
            odd.source, f"frame size {odd.frame_shape} differs from {first.source.name}"
        )


def session_recordings(
    session: Session,
    videos: Mapping[Path, VideoInfo],
    strict: bool = False,
    concatenated: bool = True,
    max_frames: int | None = None,
) -> list[Recording]:
    """Every device of every acquisition, in acquisition time order (each cut to its first
    `max_frames` frames if given).

    When a device's acquisitions go into one series (`concatenated`), they must not overlap in
    time, or its timestamps would run backwards.
    """
    if strict and session.inventory is not None:
        session.inventory.check_strict()
    recordings = [
        build_recording(acquisition, device, videos, strict)
        for acquisition in session.acquisitions
        for device in acquisition.devices
    ]
    if concatenated:
        _check_no_overlap(recordings)
    if max_frames is not None:
        recordings = [recording.head(max_frames) for recording in recordings]
    return recordings


def _check_no_overlap(recordings: list[Recording]) -> None:
    """A copied acquisition folder or a wrong PC clock makes acquisitions overlap: refuse."""
    last: dict[str, Recording] = {}
    for recording in recordings:
        if not recording.n_frames or recording.acquisition.start is None:
            continue
        before = last.get(recording.device.name)
        if before is not None and _first_ms(recording) <= _last_ms(before):
            raise MiniscopeFormatError(
                recording.acquisition.folder,
                f"{recording.device.name} starts {_last_ms(before) - _first_ms(recording):g} ms "
                f"before acquisition {before.acquisition.label} ends, so one series would run "
                "backwards in time (a copied acquisition folder, or the PC clock changed?); "
                "remove the duplicate or convert with --per-acquisition",
            )
        last[recording.device.name] = recording


def _first_ms(recording: Recording) -> float:
    return recording.start_ms(0) + float(recording.time_ms.min())


def _last_ms(recording: Recording) -> float:
    return recording.start_ms(0) + float(recording.time_ms.max())
