"""NeuroConv's data interfaces for one Miniscope DAQ device folder each.

`MiniscopeImagingInterface` (a scope) and `ExternalVideoInterface` / `InternalVideoInterface` /
`VideoInterface` (a behaviour camera, linked or embedded) read nothing themselves: each is a
`Part` of a session the library found, and `run_conversion` is a `ConverterPipe` of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..daq.model import Device
from ..daq.timestamps import measure_timing
from ..metadata.layers import camel
from ..options import STUB_FRAMES
from ._metadata import ScopeEntry
from ._sources import Part, combined_session, device_folder_part, explicit_part
from ._timing import Alignment, aligned, native_seconds, recordings
from .errors import NeuroConvUnsupported

# The conversion options each interface takes: NeuroConv's names, the library's meaning.
CONVERSION_OPTIONS: dict[str, dict[str, Any]] = {
    "stub_test": {"type": "boolean", "default": False,
                  "description": f"Only the first {STUB_FRAMES} frames of each device (a stub run)."},
    "stub_samples": {"type": "integer", "default": STUB_FRAMES, "enum": [STUB_FRAMES],
                     "description": f"Frames of a stub run: {STUB_FRAMES} (fixed)."},
}  # fmt: skip
IMAGING_OPTIONS: dict[str, dict[str, Any]] = {
    "photon_series_index": {"type": "integer", "default": 0, "minimum": 0,
                            "description": "Which Ophys.OnePhotonSeries entry names the series."},
    "photon_series_type": {"type": "string", "default": "OnePhotonSeries",
                           "enum": ["OnePhotonSeries"]},
    "parent_container": {"type": "string", "default": "acquisition", "enum": ["acquisition"]},
    "always_write_timestamps": {"type": "boolean", "default": True,
                                "description": "Timestamps are always written (never a rate)."},
}  # fmt: skip


class BaseInterface:
    """What every interface shares: its part of a session, its alignment, run_conversion."""

    kind: str = "miniscope"
    options: dict[str, dict[str, Any]] = CONVERSION_OPTIONS
    embed_cameras: bool = False

    def __init__(self, part: Part, verbose: bool = False, metadata_key: str | None = None) -> None:
        self._part = part
        self.verbose = verbose
        self.metadata_key = metadata_key or "miniscope_imaging"
        self._alignment = Alignment()
        self.conversion_result: Any = None  # the library's ConversionResult of run_conversion

    @property
    def devices(self) -> tuple[Device, ...]:
        return self._part.devices

    def scope_entries(self, key: str) -> list[ScopeEntry]:
        """This interface's scopes, as its converter's metadata describes them."""
        return [
            ScopeEntry(key, self.metadata_key, d, camel(d.name), _rate(d))
            for d in self.devices
            if d.kind == "miniscope"
        ]

    def get_metadata(self, *, use_new_metadata_format: bool = False) -> dict[str, Any]:
        return self._pipe().get_metadata(use_new_metadata_format=use_new_metadata_format)

    def get_metadata_schema(self) -> dict[str, Any]:
        raise NeuroConvUnsupported(
            "get_metadata_schema", "the library checks metadata itself in run_conversion"
        )

    def get_conversion_options_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": dict(self.options),
        }

    def get_original_timestamps(self) -> np.ndarray:
        """`timeStamps.csv` of the frames converted, in seconds since this acquisition's Record."""
        session = combined_session([self._part])
        own = [r for r in recordings(session) if r.device in self.devices]
        if len(own) != 1:
            raise NeuroConvUnsupported(
                "timestamps of an interface with several devices", "ask each device's interface"
            )
        return native_seconds(own[0])

    def get_timestamps(self) -> np.ndarray:
        """The times this interface's frames get in the file (aligned ones when set)."""
        return aligned(self.get_original_timestamps(), self._alignment)

    def set_aligned_timestamps(self, aligned_timestamps: Sequence[float] | np.ndarray) -> None:
        times = np.asarray(aligned_timestamps, dtype=np.float64)
        expected = len(self.get_original_timestamps())
        if times.shape != (expected,):
            raise ValueError(
                f"expected {expected} aligned timestamps (one per frame), not {times.shape}"
            )
        self._alignment = Alignment(timestamps=times)

    def set_aligned_starting_time(self, aligned_starting_time: float) -> None:
        """Shift every time by `aligned_starting_time` s (added to any shift set before)."""
        shift = float(aligned_starting_time)
        if self._alignment.timestamps is not None:
            self._alignment = Alignment(timestamps=self._alignment.timestamps + shift)
        else:
            self._alignment = Alignment(
                starting_time=(self._alignment.starting_time or 0.0) + shift
            )

    def align_by_interpolation(self, unaligned_timestamps: Any, aligned_timestamps: Any) -> None:
        raise NeuroConvUnsupported(
            "align_by_interpolation",
            "pass sync pairs as ConversionOptions(alignment=TimeAlignment(local, reference)) "
            "to convert_session, or set_aligned_timestamps with every frame's time",
        )

    def add_to_nwbfile(self, *args: Any, **kwargs: Any) -> None:
        raise NeuroConvUnsupported(
            "adding to an in-memory NWBFile", "run_conversion(nwbfile_path=...) writes the file"
        )

    create_nwbfile = add_to_nwbfile

    def run_conversion(
        self,
        nwbfile_path: Path | str | None = None,
        nwbfile: Any = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        backend: str | None = None,
        backend_configuration: Any = None,
        append_on_disk_nwbfile: bool = False,
        **conversion_options: Any,
    ) -> None:
        """Write this interface's file; `conversion_options` as its schema says."""
        name = type(self).__name__
        pipe = self._pipe(name)
        pipe.run_conversion(
            nwbfile_path=nwbfile_path, nwbfile=nwbfile, metadata=metadata, overwrite=overwrite,
            backend=backend, backend_configuration=backend_configuration,
            conversion_options={name: conversion_options},
            append_on_disk_nwbfile=append_on_disk_nwbfile,
        )  # fmt: skip
        self.conversion_result = pipe.conversion_result

    def _pipe(self, name: str | None = None) -> Any:
        from .converters import ConverterPipe

        return ConverterPipe({name or type(self).__name__: self})


def _rate(device: Device) -> float | None:
    table = device.timestamps
    return measure_timing(table).rate_hz if table is not None and len(table) > 1 else None


class MiniscopeImagingInterface(BaseInterface):
    """One Miniscope's device folder (`folder_path`), or its files given one by one."""

    options = CONVERSION_OPTIONS | IMAGING_OPTIONS

    def __init__(
        self,
        folder_path: Path | str | None = None,
        *,
        file_paths: Sequence[Path | str] | None = None,
        configuration_file_path: Path | str | None = None,
        timeStamps_file_path: Path | str | None = None,  # noqa: N803 (NeuroConv's name)
        verbose: bool = False,
        metadata_key: str | None = None,
    ) -> None:
        if folder_path is not None and (file_paths is not None or configuration_file_path):
            raise ValueError(
                "give either folder_path, or file_paths with configuration_file_path, not both"
            )
        if folder_path is not None:
            part = device_folder_part(folder_path, "miniscope")
        elif file_paths is not None and configuration_file_path is not None:
            part = explicit_part(file_paths, configuration_file_path, timeStamps_file_path)
        else:
            raise ValueError("give folder_path, or both file_paths and configuration_file_path")
        super().__init__(part, verbose, metadata_key)


class ExternalVideoInterface(BaseInterface):
    """A behaviour camera's DAQ folder, its videos linked from the file (NeuroConv's default)."""

    kind = "camera"

    def __init__(
        self,
        file_paths: Sequence[Path | str],
        verbose: bool = False,
        video_name: str | None = None,
        metadata_key_name: str | None = None,
    ) -> None:
        paths = [Path(p) for p in file_paths]
        if not paths or len({p.parent for p in paths}) != 1:
            raise ValueError("file_paths: give the .avi files of one camera folder")
        if video_name is not None:
            raise NeuroConvUnsupported(
                "video_name", "the library names a camera's series from its DAQ device name"
            )
        part = device_folder_part(paths[0].parent, "camera")
        videos = set(part.devices[0].videos)
        if {p.resolve() for p in paths} != {v.resolve() for v in videos}:
            raise NeuroConvUnsupported(
                "converting some of a camera's videos",
                f"give all {len(videos)} .avi files of {paths[0].parent} (its timestamps cover all)",
            )
        super().__init__(part, verbose, metadata_key_name or "Videos")


class InternalVideoInterface(ExternalVideoInterface):
    """A behaviour camera whose frames are stored in the file (ConversionOptions.embed_cameras)."""

    embed_cameras = True


class VideoInterface(ExternalVideoInterface):
    """NeuroConv's former behaviour-video interface: linked videos unless `external_mode=False`."""

    def __init__(
        self,
        file_paths: Sequence[Path | str],
        verbose: bool = False,
        metadata_key_name: str = "Videos",
        external_mode: bool = True,
    ) -> None:
        super().__init__(file_paths, verbose, metadata_key_name=metadata_key_name)
        self.embed_cameras = not external_mode
