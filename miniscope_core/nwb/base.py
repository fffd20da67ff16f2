"""What every part of the NWB layout shares: options, the session clock, names, the context the
parts add their objects to, and how a device's recordings are grouped into image series."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from pynwb import NWBFile

from ..daq.video import VideoInfo
from ..errors import MiniscopeFormatError, MiniscopeWarning, MissingDeviceWarning
from ..timing.clock import SessionClock
from ..timing.recordings import Recording

MANUFACTURER = "UCLA Miniscope project (open-source hardware)"
DEVICE_TABLE = "acquisition_devices"  # intervals/<this>: settings per acquisition and device
NOT_SETTINGS = {"deviceName", "deviceDirectory", "deviceID"}


@dataclass(frozen=True)
class Fill:
    """Fill dataset `dataset_path` from `offset` with the first `n_frames` frames of `video`."""

    dataset_path: str
    video: VideoInfo
    offset: int
    n_frames: int


@dataclass(frozen=True)
class Layout:
    """The NWBFile to write, the chunk copies that complete it, and the clock of its times."""

    nwbfile: NWBFile
    fills: list[Fill]
    clock: SessionClock


@dataclass(frozen=True)
class LayoutOptions:
    """How the file is laid out; `source_script*` record the converter's provenance in NWB.

    The choices have no default here: they are the user's `ConversionOptions`, whose
    defaults are the only ones (`pipeline.stages.layout_options` makes this from them).
    """

    per_acquisition: bool
    embed_cameras: bool
    neuroconv_names: bool  # see naming.py
    compression_level: int
    frames_per_chunk: int
    series_names: tuple[tuple[str, str], ...]  # (the layout's name, the user's) per image series
    stub_frames: int | None = None  # a stub run: only this many frames per device and acquisition
    left_out: tuple[str, ...] = ()  # the session's files that do not reach the file, and why
    source_script: str = ""
    source_script_file_name: str = ""

    def __post_init__(self) -> None:
        if self.source_script_file_name and not self.source_script:
            raise ValueError("source_script_file_name needs source_script (NWB stores it with it)")


def acquisition_suffix(label: str) -> str:
    """An acquisition label as a name suffix: `main/15_03_28` -> `main_15_03_28`."""
    return re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_")


@dataclass
class LayoutContext:
    """The file being built and the chunk copies collected so far; every part adds to it."""

    nwbfile: NWBFile
    metadata: dict[str, Any]
    clock: SessionClock
    nwb_path: Path
    options: LayoutOptions
    fills: list[Fill] = field(default_factory=list)
    renamed: set[str] = field(default_factory=set)  # the layout's names given another

    def named(self, groups: list[SeriesGroup]) -> list[SeriesGroup]:
        """`groups` under the names the user gave them (`series_names`), where given; a name
        another series of the file already has is refused."""
        names = dict(self.options.series_names)
        self.renamed |= {group.name for group in groups if group.name in names}
        named = [replace(group, name=names.get(group.name, group.name)) for group in groups]
        for before, after in zip(groups, named, strict=True):
            if (
                after.name in self.nwbfile.acquisition
                or [g.name for g in named].count(after.name) > 1
            ):
                raise MiniscopeFormatError(
                    self.nwb_path,
                    f"series {before.name} renamed {after.name}: another series has that name",
                )
        return named

    def check_renames(self) -> None:
        """Every rename asked for names a series of this file (before anything is decoded)."""
        unknown = sorted(set(dict(self.options.series_names)) - self.renamed)
        if unknown:
            mine = sorted(
                set(self.nwbfile.acquisition) - set(dict(self.options.series_names).values())
            )
            raise MiniscopeFormatError(
                self.nwb_path,
                f"no image series {', '.join(unknown)} to rename; the layout's names are "
                f"{', '.join(sorted([*mine, *self.renamed]))}",
            )

    def seconds(self, recording: Recording, time_ms: np.ndarray | None = None) -> np.ndarray:
        """The times of `recording`'s frames (or of `time_ms`) in the file (see SessionClock)."""
        return self.clock.seconds(recording, time_ms)

    def empty_dataset(self, series: str, recordings: list[Recording]) -> H5DataIO:
        """A deflate dataset for `series` of whole frames per chunk, filled from the recordings'
        files once written; all recordings must share one frame shape (see `series_groups`)."""
        path, offset = f"acquisition/{series}/data", 0
        for recording in recordings:
            for segment in recording.segments:
                video = recording.videos[segment.video]
                self.fills.append(Fill(path, video, offset, segment.n_frames))
                offset += segment.n_frames
        shape, n_frames = recordings[0].frame_shape, sum(r.n_frames for r in recordings)
        per_chunk = max(1, min(self.options.frames_per_chunk, n_frames))  # HDF5: not past its end
        return H5DataIO(
            shape=(n_frames, *shape),
            dtype=np.uint8,
            chunks=(per_chunk, *shape),
            compression="gzip",
            compression_opts=self.options.compression_level,
        )

    def behavior(self) -> Any:
        """The `behavior` processing module, created when first needed."""
        if "behavior" not in self.nwbfile.processing:
            self.nwbfile.create_processing_module("behavior", "Behavioral data.")
        return self.nwbfile.processing["behavior"]


def settings_text(settings: dict[str, Any], skip: tuple[str, ...]) -> str:
    """Raw settings as `key: value` text, nested ones (ROI) as `ROI.width: 608`."""
    items = []
    for key, value in sorted(settings.items()):
        if key in NOT_SETTINGS or key in skip:
            continue
        if isinstance(value, dict):
            items += [f"{key}.{k}: {v}" for k, v in value.items()]
        else:
            items.append(f"{key}: {value}")
    return ", ".join(items)


def timestamps_sources(recordings: list[Recording]) -> str:
    """Where the times of a series come from: timeStamps.csv, or a V3 timestamp.dat's camNum."""
    return ", ".join(dict.fromkeys(r.device.timestamps_source() for r in recordings))


def differing_settings(recordings: list[Recording]) -> list[str]:
    """Settings whose values change between the acquisitions of one device."""
    keys = {k for r in recordings for k in r.device.settings} - NOT_SETTINGS
    values = {k: [r.device.settings.get(k) for r in recordings] for k in sorted(keys)}
    return [k for k, v in values.items() if any(x != v[0] for x in v)]


Suffix = Callable[[Recording], str]


def _our_suffix(recording: Recording) -> str:
    return "_" + acquisition_suffix(recording.acquisition.label)


def acquisition_groups(
    recordings: list[Recording], per_acquisition: bool, suffix: Suffix = _our_suffix
) -> list[tuple[str, list[Recording]]]:
    """(name suffix, recordings): all acquisitions together, or one per acquisition."""
    if not per_acquisition:
        return [("", recordings)]
    return [(suffix(r), [r]) for r in recordings]


@dataclass(frozen=True)
class SeriesGroup:
    """Recordings of one device written as one image series, and why its frames were split."""

    name: str
    recordings: list[Recording]
    split_note: str = ""  # for the description: "" or " Split at each frame size change: ..."

    @property
    def labels(self) -> str:
        return ", ".join(r.acquisition.label for r in self.recordings)


def series_groups(
    recordings: list[Recording],
    prefix: str,
    per_acquisition: bool,
    split_by_size: bool,
    suffix: Suffix = _our_suffix,
) -> list[SeriesGroup]:
    """The image series of one device, named `prefix[<suffix of the acquisition>]`.

    An HDF5 dataset has one frame shape, so with `split_by_size` a device whose frame size
    changes gets one series per run of consecutive acquisitions of equal size, each named after
    its first acquisition; a device that never changes size keeps the plain `prefix`.
    """
    _warn_without_frames(recordings)
    framed = [r for r in recordings if r.n_frames]
    if not framed:
        return []
    if per_acquisition:
        return [SeriesGroup(prefix + s, g) for s, g in acquisition_groups(framed, True, suffix)]
    runs = _size_runs(framed) if split_by_size else [framed]
    if len(runs) == 1:
        return [SeriesGroup(prefix, framed)]
    names = [f"{prefix}_{acquisition_suffix(run[0].acquisition.label)}" for run in runs]
    _warn_split(runs, names)
    changes = "; ".join(
        f"frame size changed from {_size(before[-1])} to {_size(after[0])} "
        f"at acquisition {after[0].acquisition.label}"
        for before, after in pairwise(runs)
    )
    note = f" Split at each frame size change (width x height): {changes}."
    return [SeriesGroup(name, run, note) for name, run in zip(names, runs, strict=True)]


def _warn_without_frames(recordings: list[Recording]) -> None:
    """A device folder without any decodable frame is reported, not written as a series."""
    for recording in recordings:
        if not recording.n_frames:
            warnings.warn(
                f"{_why_no_frames(recording)}; no image series is written for this acquisition",
                MissingDeviceWarning,
                stacklevel=3,
            )


def _why_no_frames(recording: Recording) -> str:
    """What a device without frames lacks: videos, timestamp rows, or decodable frames."""
    device = recording.device
    if not device.videos:
        return f"{device.folder}: has no N.avi video"
    if device.timestamps_path is not None and not len(recording.table):
        return f"{device.timestamps_path}: has a header but no rows"
    return f"{device.folder}: its videos hold no decodable frames"


def _size_runs(recordings: list[Recording]) -> list[list[Recording]]:
    """Consecutive recordings with equal frame shape; known from the videos before any pixel."""
    runs: list[list[Recording]] = []
    for recording in recordings:
        if runs and runs[-1][-1].frame_shape == recording.frame_shape:
            runs[-1].append(recording)
        else:
            runs.append([recording])
    return runs


def _size(recording: Recording) -> str:
    """`608x608`: width x height of the recording's frames (colour channels left out)."""
    return "x".join(str(n) for n in recording.frame_shape[:2])


def _warn_split(runs: list[list[Recording]], names: list[str]) -> None:
    for before, after in pairwise(runs):
        first, then = before[-1], after[0]
        warnings.warn(
            f"{then.device.kind} {then.device.name!r}: frame size changed from {_size(first)} "
            f"to {_size(then)} (width x height) between acquisitions "
            f"{first.acquisition.label} and {then.acquisition.label}; its frames are written "
            f"as one series per run of equal size: {', '.join(names)}",
            MiniscopeWarning,
            stacklevel=4,
        )
