"""Which backend an output uses, told by its name, and whether the Zarr one can be used here.

NWB Zarr (hdmf-zarr) is an optional extra: this module imports none of it, so the HDF5 path,
`validate` of `.nwb` files and the Dagster layer work without it, and asking for Zarr without
it installed is one line saying what to install.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import MiniscopeFormatError

BACKENDS = ("hdf5", "zarr")
DEFAULT_BACKEND = "hdf5"
INSTALL_HINT = "pip install 'miniscope-nwb[zarr]'"


class ZarrUnavailableError(MiniscopeFormatError):
    """NWB Zarr was asked for but hdmf-zarr is not installed."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, f"NWB Zarr needs hdmf-zarr, which is not installed: {INSTALL_HINT}")


def require_zarr(path: Path | str) -> None:
    """Raise `ZarrUnavailableError` (naming `path`) unless hdmf-zarr can be imported."""
    try:
        import hdmf_zarr  # noqa: F401
    except ImportError:
        raise ZarrUnavailableError(path) from None


def for_backend(path: Path, backend: str) -> Path:
    """`x.nwb` as `backend` names it: `x.nwb.zarr` for Zarr (as DANDI and pynwb expect)."""
    return path.with_name(path.name + ".zarr") if backend == "zarr" else path


def check_output_name(path: Path, backend: str) -> None:
    """A Zarr output is named `*.zarr` (a directory), an HDF5 one is not: else a clear error."""
    zarr_name = path.name.endswith(".zarr")
    if backend == "zarr" and not zarr_name:
        raise MiniscopeFormatError(path, "a Zarr output (--backend zarr) must end in .nwb.zarr")
    if backend != "zarr" and zarr_name:
        raise MiniscopeFormatError(path, "ends in .zarr; write NWB Zarr with --backend zarr")


def is_zarr_store(path: Path) -> bool:
    """A directory holding a Zarr (v2) group: what `NWBZarrIO` writes."""
    return path.is_dir() and (path / ".zgroup").is_file()


def stored_bytes(path: Path) -> int:
    """Bytes on disk of an output: the file, or every file of a Zarr directory."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )
