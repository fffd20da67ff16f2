"""DANDI's rules for a dandiset folder beyond each file's content: `dandiset.yaml`'s metadata,
the names `dandi organize` gives (`sub-<id>/sub-<id>_ses-<id>_<modalities>.nwb`), Zarr layout.

They come from the `dandi` package itself (the `dandi` extra), run as `dandi validate` runs
them; the content of each NWB file (pynwb, nwbinspector) is left to `check_file`, which applies
the same configuration and so gives the same verdict, with the read-back beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MiniscopeFormatError

INSTALL_HINT = "pip install 'miniscope-nwb[dandi]'"
_CONTENT_VALIDATORS = {"nwbinspector", "pynwb"}  # what check_file reports for each file


@dataclass(frozen=True)
class DandiFinding:
    """One of DANDI's findings on the folder: its severity as DANDI names it, and where."""

    severity: str  # ERROR, WARNING, HINT, ...
    id: str  # e.g. DANDI.NON_DANDI_FILENAME
    path: str
    message: str

    @property
    def fails(self) -> bool:
        """Whether `dandi validate` (and so the upload) refuses the dandiset for it."""
        return self.severity in {"ERROR", "CRITICAL"}

    def __str__(self) -> str:
        return f"{self.id} at {self.path}: {self.message}"


def dandiset_findings(folder: Path) -> list[DandiFinding]:
    """DANDI's findings on the dandiset at `folder`, other than each NWB file's content."""
    if not (folder / "dandiset.yaml").is_file():
        raise MiniscopeFormatError(folder, "is not a dandiset folder (no dandiset.yaml in it)")
    try:
        from dandi.validate._core import validate
    except ImportError:
        raise MiniscopeFormatError(
            folder, f"checking DANDI's rules needs the dandi package: {INSTALL_HINT}"
        ) from None
    return [
        DandiFinding(
            result.severity.name if result.severity else "INFO",
            result.id,
            _relative(result.path, folder),
            result.message or "",
        )  # fmt: skip
        for result in validate(folder)
        if result.origin.validator.value not in _CONTENT_VALIDATORS
    ]


def _relative(path: Path | None, folder: Path) -> str:
    if path is None:
        return str(folder)
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)


def nwb_outputs(folder: Path) -> list[Path]:
    """Every NWB file and NWB Zarr store under `folder`, as DANDI finds them (no hidden ones)."""
    found = [*folder.rglob("*.nwb"), *folder.rglob("*.nwb.zarr")]
    hidden = [p for p in found if any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(set(found) - set(hidden))
