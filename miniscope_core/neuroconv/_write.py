"""One conversion through `convert_session`, with the series names a script's metadata gives.

The library names series itself (`OnePhotonSeries<device>[_<acquisition>]`) and has no hook
for a name per series, so a name the metadata changes is given here: the file is converted
under a hidden name beside the output, its series are renamed (HDF5 links; nothing else in the
file refers to a series by path), read back with `verify_nwb`, and only then take the output's
name through `atomic_output` (never replacing a file unless `overwrite`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py

from ..daq.model import Session
from ..errors import MiniscopeFormatError
from ..options import ConversionOptions
from ..outputs.atomic import atomic_output
from ..outputs.guard import refuse_writes_inside
from ..pipeline.convert import ConversionResult, convert_session
from ..timing.recordings import Recording
from ..verify.validate import VerificationError, verify_nwb
from ._timing import recordings
from .errors import NeuroConvUnsupported


def write(
    session: Session,
    output: Path,
    options: ConversionOptions,
    overrides: dict[str, Any],
    series_names: Callable[[list[Recording]], Mapping[str, str]],
    overwrite: bool,
) -> ConversionResult:
    """Convert `session` to `output`; `series_names` maps the library's series names (of the
    session's recordings) to the script's."""
    names = {old: new for old, new in series_names(recordings(session)).items() if old != new}
    if not names:
        return convert_session(session, output, options, metadata=overrides, overwrite=overwrite)
    if options.backend != "hdf5":
        raise NeuroConvUnsupported(
            "renaming series in a Zarr store", "use backend='hdf5', or keep the series' names"
        )
    refuse_writes_inside([session], outputs=[output])
    with atomic_output(output, overwrite=overwrite) as target:
        # beside the output, so that the paths of linked videos stay relative to its folder
        staged = output.with_name(f".{output.name}.{os.getpid()}.neuroconv.nwb")
        try:
            result = convert_session(session, staged, options, metadata=overrides, overwrite=True)
            _rename(staged, names)
            if options.verify:
                check = verify_nwb(staged)
                if not check.passed:
                    raise VerificationError(output, check.problems)
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
    frames = {names.get(name, name): n for name, n in result.series_frames.items()}
    return replace(result, output=output, series_frames=frames)


def _rename(path: Path, names: Mapping[str, str]) -> None:
    with h5py.File(path, "r+") as file:
        acquisition = file["acquisition"]
        missing = [old for old in names if old not in acquisition]
        if missing:
            raise MiniscopeFormatError(path, f"has no series {missing} to rename")
        taken = [new for new in names.values() if new in acquisition and new not in names]
        if taken or len(set(names.values())) != len(names):
            raise MiniscopeFormatError(
                path, f"two series would be named {sorted(set(taken) or names.values())}"
            )
        moved = {old: f"__renaming_{index}" for index, old in enumerate(names)}
        for old, temporary in moved.items():
            acquisition.move(old, temporary)
        for old, temporary in moved.items():
            acquisition.move(temporary, names[old])
