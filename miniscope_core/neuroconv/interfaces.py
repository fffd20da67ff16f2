"""NeuroConv's data interfaces for one Miniscope DAQ device folder each.

`MiniscopeImagingInterface` (a scope) and `ExternalVideoInterface` / `InternalVideoInterface` /
`VideoInterface` (a behaviour camera, linked or embedded) read nothing themselves: each is a
`Part` of a session the library found, and `run_conversion` is a `ConverterPipe` of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._base import CONVERSION_OPTIONS, IMAGING_OPTIONS, BaseInterface
from ._sources import device_folder_part, explicit_part
from .converters import ConverterPipe
from .errors import NeuroConvUnsupported


class _Converting(BaseInterface):
    """An interface converted by itself: a ConverterPipe of one."""

    def get_metadata(self, *, use_new_metadata_format: bool = False) -> dict[str, Any]:
        return self._pipe().get_metadata(use_new_metadata_format=use_new_metadata_format)

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

    def _pipe(self, name: str | None = None) -> ConverterPipe:
        return ConverterPipe({name or type(self).__name__: self})


class MiniscopeImagingInterface(_Converting):
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


class ExternalVideoInterface(_Converting):
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
                f"give all {len(videos)} .avi files of {paths[0].parent} (its timestamps list all)",
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


class MiniscopeHeadOrientationInterface:
    """Refused: the head orientation is converted with its Miniscope's interface."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NeuroConvUnsupported(
            "MiniscopeHeadOrientationInterface",
            "MiniscopeImagingInterface of the scope's folder writes its headOrientation.csv "
            "(processing/behavior)",
        )
