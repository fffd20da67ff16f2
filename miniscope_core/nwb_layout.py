"""Build the in-memory NWBFile: devices, planes, series and tables, in NeuroConv's familiar layout.

Pixel data is not touched here: each image series gets an empty, chunked, deflate-filtered
dataset, and `Fill` records say which chunk files are copied into it once the file is written.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from ndx_miniscope import Miniscope
from pynwb import NWBFile, TimeSeries
from pynwb.device import Device, DeviceModel
from pynwb.epoch import TimeIntervals
from pynwb.event import EventsTable
from pynwb.file import Subject
from pynwb.image import ImageSeries
from pynwb.ophys import OnePhotonSeries, OpticalChannel

from .chunks import ChunkFile
from .errors import MissingDeviceWarning
from .notes import read_notes
from .orientation import read_head_orientation
from .recordings import Recording
from .settings import normalised_settings
from .user_metadata import ophys_for

MANUFACTURER = "UCLA Miniscope project (open-source hardware)"
_MINISCOPE_FIELDS = ("compression", "deviceType", "frameRate", "framesPerFile", "gain", "led0")
_NOT_SETTINGS = {"deviceName", "deviceDirectory", "deviceID"}


@dataclass(frozen=True)
class Fill:
    """Copy `n_frames` chunks of `chunk_file` into dataset `dataset_path` at `offset`."""

    dataset_path: str
    chunk_file: ChunkFile
    offset: int
    n_frames: int


@dataclass(frozen=True)
class Layout:
    """The NWBFile to write and the chunk copies that complete it."""

    nwbfile: NWBFile
    fills: list[Fill]


@dataclass(frozen=True)
class LayoutOptions:
    per_acquisition: bool = False
    embed_cameras: bool = False
    compression_level: int = 4


def camel(name: str) -> str:
    """NeuroConv-style names: `miniscope_side` -> `MiniscopeSide`, `BehavCam 2` -> `BehavCam2`."""
    parts = re.split(r"[^0-9A-Za-z]+", name)
    return "".join(part[:1].upper() + part[1:] for part in parts if part) or "Device"


def acquisition_suffix(label: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_")


@dataclass(frozen=True)
class SessionClock:
    """NWB time zero and how acquisitions without a recorded start are placed."""

    start: datetime
    start_ms: int
    fallback_ms: int


def build_layout(
    recordings: list[Recording],
    metadata: dict[str, Any],
    clock: SessionClock,
    nwb_path: Path,
    options: LayoutOptions,
) -> Layout:
    """The whole NWBFile for a session's recordings (frames still to be copied)."""
    nwbfile = _nwbfile(metadata, clock.start)
    fills: list[Fill] = []
    builder = _Builder(nwbfile, metadata, clock, nwb_path, options, fills)
    for name in _names(recordings, "miniscope"):
        builder.add_miniscope([r for r in recordings if r.device.name == name])
    for name in _names(recordings, "camera"):
        builder.add_camera([r for r in recordings if r.device.name == name])
    builder.add_acquisition_table(recordings)
    builder.add_dropped_frames(recordings)
    builder.add_notes(recordings)
    return Layout(nwbfile, fills)


def _names(recordings: list[Recording], kind: str) -> list[str]:
    return list(dict.fromkeys(r.device.name for r in recordings if r.device.kind == kind))


def _nwbfile(metadata: dict[str, Any], start: datetime) -> NWBFile:
    fields = dict(metadata.get("NWBFile") or {})
    fields.pop("session_start_time", None)
    fields.setdefault("identifier", str(uuid.uuid4()))
    for key in ("experimenter", "keywords", "related_publications"):
        if isinstance(fields.get(key), str):
            fields[key] = [fields[key]]
    nwbfile = NWBFile(session_start_time=start, **fields)
    subject = metadata.get("Subject")
    if subject:
        nwbfile.subject = Subject(**subject)
    return nwbfile


def _settings_text(settings: dict[str, Any], skip: tuple[str, ...]) -> str:
    items = []
    for key, value in sorted(settings.items()):
        if key in _NOT_SETTINGS or key in skip:
            continue
        if isinstance(value, dict):
            items += [f"{key}.{k}: {v}" for k, v in value.items()]
        else:
            items.append(f"{key}: {value}")
    return ", ".join(items)


def _differing(recordings: list[Recording]) -> dict[str, list[Any]]:
    """Settings whose values change between the acquisitions of one device."""
    keys = {k for r in recordings for k in r.device.settings} - _NOT_SETTINGS
    values = {k: [r.device.settings.get(k) for r in recordings] for k in sorted(keys)}
    return {k: v for k, v in values.items() if any(x != v[0] for x in v)}


class _Builder:
    """Adds one kind of object at a time to `nwbfile`; collects the chunk copies."""

    def __init__(
        self,
        nwbfile: NWBFile,
        metadata: dict[str, Any],
        clock: SessionClock,
        nwb_path: Path,
        options: LayoutOptions,
        fills: list[Fill],
    ) -> None:
        self.nwbfile = nwbfile
        self.metadata = metadata
        self.clock = clock
        self.nwb_path = nwb_path
        self.options = options
        self.fills = fills

    def seconds(self, recording: Recording, time_ms: np.ndarray | None = None) -> np.ndarray:
        """Seconds since session start, exact to the DAQ's integer milliseconds."""
        times = recording.time_ms if time_ms is None else time_ms
        offset_ms = recording.start_ms(self.clock.fallback_ms) - self.clock.start_ms
        return (offset_ms + np.asarray(times, dtype=np.float64)) / 1000.0

    def groups(self, recordings: list[Recording]) -> list[tuple[str, list[Recording]]]:
        """One group per series: all acquisitions together, or one per acquisition."""
        if not self.options.per_acquisition:
            return [("", recordings)]
        return [("_" + acquisition_suffix(r.acquisition.label), [r]) for r in recordings]

    def video_groups(self, recordings: list[Recording]) -> list[tuple[str, list[Recording]]]:
        """Groups that have frames; a device folder without any video is reported, not written."""
        for recording in recordings:
            if not recording.n_frames:
                warnings.warn(
                    f"{recording.device.folder}: no decodable video frames; no image series "
                    "is written for this acquisition",
                    MissingDeviceWarning,
                    stacklevel=2,
                )
        groups = [(s, [r for r in g if r.n_frames]) for s, g in self.groups(recordings)]
        return [(suffix, group) for suffix, group in groups if group]

    def device_model(self, device_type: str) -> DeviceModel:
        if device_type not in self.nwbfile.device_models:
            self.nwbfile.add_device_model(
                DeviceModel(name=device_type, manufacturer=MANUFACTURER, description=device_type)
            )
        return self.nwbfile.device_models[device_type]

    def add_miniscope(self, recordings: list[Recording]) -> None:
        first = recordings[0].device
        name = camel(first.name)
        device = self._miniscope_device(recordings)
        ophys = ophys_for(self.metadata, first.name)
        plane = self.nwbfile.create_imaging_plane(
            name=f"ImagingPlane{name}",
            optical_channel=OpticalChannel(
                name="OpticalChannel",
                description="Green emission light collected by the Miniscope.",
                emission_lambda=float(ophys["emission_lambda"]),
            ),
            description=str(ophys["imaging_plane_description"]),
            device=device,
            excitation_lambda=float(ophys["excitation_lambda"]),
            imaging_rate=float(recordings[0].timing.rate_hz or np.nan),
            indicator=str(ophys["indicator"]),
            location=str(ophys["location"]),
        )
        for suffix, group in self.video_groups(recordings):
            self._add_image_series(group, f"OnePhotonSeries{name}{suffix}", plane)
        self._add_head_orientation(recordings, name)

    def _miniscope_device(self, recordings: list[Recording]) -> Miniscope:
        settings = recordings[0].device.settings
        fields = {k: settings[k] for k in _MINISCOPE_FIELDS if k in settings}
        for key in ("compression", "deviceType", "frameRate", "gain"):
            if key in fields:
                fields[key] = str(fields[key])
        for key in ("framesPerFile", "led0"):
            value = fields.get(key)
            if value is not None and float(value) != int(float(value)):
                fields.pop(key)
            elif value is not None:
                fields[key] = int(float(value))
        roi = settings.get("ROI")
        if isinstance(roi, dict) and {"height", "width"} <= roi.keys():
            fields["ROI"] = [int(roi["height"]), int(roi["width"])]
        device = Miniscope(
            name=camel(recordings[0].device.name),
            description=self._device_description(recordings, tuple(fields)),
            model=self.device_model(recordings[0].device.device_type),
            **fields,
        )
        self.nwbfile.add_device(device)
        return device

    def _device_description(self, recordings: list[Recording], stored: tuple[str, ...]) -> str:
        device = recordings[0].device
        text = f"{device.device_type} {device.name!r} recorded with the Miniscope DAQ software."
        extra = _settings_text(device.settings, tuple(k for k in stored if k != "ROI"))
        if extra:
            text += f" Settings the ndx-miniscope schema has no field for: {extra}."
        normal = normalised_settings(device.settings)
        if normal:
            text += " As numbers: " + ", ".join(f"{k}: {v:g}" for k, v in normal.items()) + "."
        differing = _differing(recordings)
        if differing:
            per = "; ".join(
                f"{r.acquisition.label}: "
                + ", ".join(f"{k}={r.device.settings.get(k)}" for k in differing)
                for r in recordings
            )
            text += f" Settings that differ between acquisitions (fields hold the first's): {per}."
        return text

    def _add_image_series(self, recordings: list[Recording], name: str, plane: Any) -> None:
        shape = recordings[0].frame_shape
        n_frames = sum(r.n_frames for r in recordings)
        data = self._empty_dataset(n_frames, shape, f"acquisition/{name}/data", recordings)
        labels = ", ".join(r.acquisition.label for r in recordings)
        series = OnePhotonSeries(
            name=name,
            imaging_plane=plane,
            data=data,
            unit="px",
            dimension=list(shape[:2]),
            timestamps=H5DataIO(
                np.concatenate([self.seconds(r) for r in recordings]), compression="gzip"
            ),
            description=(
                f"Frames of Miniscope {recordings[0].device.name!r}, (frame, width, height), "
                f"from acquisitions {labels}; timestamps from timeStamps.csv."
            ),
            device=plane.device,
        )
        self.nwbfile.add_acquisition(series)

    def _empty_dataset(
        self, n_frames: int, shape: tuple[int, ...], path: str, recordings: list[Recording]
    ) -> H5DataIO:
        """A chunked deflate dataset to be filled chunk by chunk from the recordings' files."""
        offset = 0
        for recording in recordings:
            for segment in recording.segments:
                video = recording.videos[segment.video]
                self.fills.append(Fill(path, video, offset, segment.n_frames))
                offset += segment.n_frames
        return H5DataIO(
            shape=(n_frames, *shape),
            dtype=np.uint8,
            chunks=(1, *shape),
            compression="gzip",
            compression_opts=self.options.compression_level,
        )

    def _add_head_orientation(self, recordings: list[Recording], name: str) -> None:
        for suffix, group in self.groups(recordings):
            times, values = [], []
            for recording in group:
                path = recording.device.head_orientation_path
                if path is None:
                    continue
                time_ms, quaternions = read_head_orientation(path)
                times.append(self.seconds(recording, time_ms))
                values.append(quaternions)
            if not times or not sum(len(t) for t in times):
                continue
            self._behavior().add(
                TimeSeries(
                    name=f"TimeSeriesMiniscopeHeadOrientation{name}{suffix}",
                    data=H5DataIO(np.concatenate(values), compression="gzip"),
                    timestamps=H5DataIO(np.concatenate(times), compression="gzip"),
                    unit="n.a.",
                    description=(
                        f"Head orientation of Miniscope {group[0].device.name!r} from its BNO055 "
                        "IMU as unit quaternions (w, x, y, z), Hamilton scalar-first. Rows the DAQ "
                        "wrote as 0,0,0,0 (no sample) are left out."
                    ),
                )
            )

    def _behavior(self) -> Any:
        if "behavior" not in self.nwbfile.processing:
            self.nwbfile.create_processing_module("behavior", "Behavioral data.")
        return self.nwbfile.processing["behavior"]

    def add_camera(self, recordings: list[Recording]) -> None:
        first = recordings[0].device
        name = camel(first.name)
        device = Device(
            name=name,
            description=f"Behaviour camera {first.name!r} ({first.device_type}). "
            + _settings_text(first.settings, ()),
            model=self.device_model(first.device_type),
        )
        self.nwbfile.add_device(device)
        for suffix, group in self.video_groups(recordings):
            self._add_camera_series(group, f"ImageSeries{name}{suffix}", device)

    def _add_camera_series(self, recordings: list[Recording], name: str, device: Device) -> None:
        timestamps = H5DataIO(
            np.concatenate([self.seconds(r) for r in recordings]), compression="gzip"
        )
        description = f"Video of behaviour camera {recordings[0].device.name!r}."
        if self.options.embed_cameras:
            shape = recordings[0].frame_shape
            n_frames = sum(r.n_frames for r in recordings)
            data = self._empty_dataset(n_frames, shape, f"acquisition/{name}/data", recordings)
            series = ImageSeries(
                name=name,
                data=data,
                unit="n.a.",
                timestamps=timestamps,
                device=device,
                description=description + " Frames (frame, width, height, RGB).",
            )
        else:
            files, starting = self._external_files(recordings)
            series = ImageSeries(
                name=name,
                external_file=files,
                starting_frame=starting,
                format="external",
                unit="n.a.",
                timestamps=timestamps,
                device=device,
                description=description + " Linked .avi files, paths relative to this NWB file.",
            )
        self.nwbfile.add_acquisition(series)

    def _external_files(self, recordings: list[Recording]) -> tuple[list[str], list[int]]:
        files, starting, offset = [], [], 0
        base = self.nwb_path.resolve().parent
        for recording in recordings:
            for segment in recording.segments:
                if segment.n_frames == 0:
                    continue
                source = recording.device.videos[segment.video].resolve()
                files.append(Path(os.path.relpath(source, base)).as_posix())
                starting.append(offset)
                offset += segment.n_frames
        return files, starting

    def add_acquisition_table(self, recordings: list[Recording]) -> None:
        """Where each acquisition begins and ends on the session clock."""
        table = TimeIntervals(
            name="acquisitions", description="One row per acquisition (one press of Record)."
        )
        table.add_column("label", "Acquisition folder, relative to the session folder.")
        spans: dict[str, list[float]] = {}
        for recording in recordings:
            if recording.n_frames:
                times = self.seconds(recording)
                span = spans.setdefault(recording.acquisition.label, [times[0], times[-1]])
                span[0], span[1] = min(span[0], times[0]), max(span[1], times[-1])
        for label, (begin, end) in spans.items():
            table.add_row(start_time=float(begin), stop_time=float(end), label=label)
        if spans:
            self.nwbfile.add_time_intervals(table)

    def add_dropped_frames(self, recordings: list[Recording]) -> None:
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
                begin, end = self.seconds(recording, np.array([gap.start_ms, gap.stop_ms]))
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
            self.nwbfile.add_time_intervals(table)

    def add_notes(self, recordings: list[Recording]) -> None:
        """notes.csv rows of every acquisition, in one events table with an annotation column."""
        rows: list[tuple[float, str]] = []
        seen = set()
        for recording in recordings:
            acquisition = recording.acquisition
            if acquisition.notes_path is None or acquisition.label in seen:
                continue
            seen.add(acquisition.label)
            for time_ms, text in read_notes(acquisition.notes_path):
                rows.append((float(self.seconds(recording, np.array([time_ms]))[0]), text))
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
        self.nwbfile.add_events_table(table)
