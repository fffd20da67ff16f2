"""DANDI-ready output: files named as `dandi organize` names them, and DANDI's required
metadata demanded before any frame is decoded.

The name follows dandi-cli's `organize` (dandi/organize.py, dandi/consts.py
`dandi_layout_fields`): `sub-<subject_id>/sub-<subject_id>_ses-<session_id>_<modalities>.nwb`,
ids with `_*\\/<>:|"'?%@;,`, whitespace and `.` replaced by `-`, and the modalities the pynwb
modules of the file's neurodata types (`pynwb.ophys` -> `ophys`, `pynwb.image` -> `image`;
base, device, file and misc types, extension types and types dandi-cli's map lacks, such as
the interval tables' TimeIntervals, add none), sorted and joined by `+`: known from the kinds
of recording, before anything is laid out (`nwb.layout.modalities`). `dandi organize`
leaves `_ses-` out while a dandiset holds one session of a subject; it is always given here,
so a name never changes when a session is added.

DANDI's required metadata is what `dandi validate` fails without (nwbinspector's DANDI
configuration, CRITICAL): a subject with subject_id, species, sex and age or date_of_birth,
and ids without `/`.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..daq.model import Session
from ..errors import MiniscopeFormatError
from ..metadata.layers import SESSION_METADATA_FILE
from ..metadata.schema import MetadataError
from ..nwb.layout import modalities
from ..options import ConversionOptions
from ..outputs.guard import refuse_writes_inside
from .stages import plan_recordings, probe_videos

# (section, fields of which one is needed, an example value)
REQUIRED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Subject", ("subject_id",), "m01"),
    ("Subject", ("species",), "Mus musculus"),
    ("Subject", ("sex",), "F"),
    ("Subject", ("age", "date_of_birth"), "P90D"),
    ("NWBFile", ("session_id",), "2024_01_15"),
)
_UNSAFE = re.compile(r"[_*\\/<>:|\"'?%@;,\s.]")
_GENERIC_MODALITIES = {"base", "device", "file", "misc"}


def where_to_set(session_root: Path) -> str:
    """The metadata layers a user can set a field in (see `user_metadata`)."""
    return (
        f"set in {session_root / SESSION_METADATA_FILE}, a --metadata or --lab-metadata file, "
        "or in Dagster MINISCOPE_METADATA_FILE or the run config's metadata"
    )


def require_dandi_metadata(metadata: Mapping[str, Any], session_root: Path) -> None:
    """A one-line MetadataError naming every field DANDI requires that is missing."""
    missing = []
    for section, fields, example in REQUIRED:
        given = metadata.get(section) or {}
        if not any(given.get(field) not in (None, "") for field in fields):
            names = " or ".join(f"{section}.{field}" for field in fields)
            missing.append(f"{names} (e.g. {example!r})")
    if missing:
        raise MetadataError(
            session_root,
            f"DANDI requires {', '.join(missing)}: {where_to_set(session_root)}",
        )
    for section, field in (("Subject", "subject_id"), ("NWBFile", "session_id")):
        if "/" in str(metadata[section][field]):
            raise MetadataError(
                session_root,
                f"DANDI refuses '/' in {section}.{field} ({metadata[section][field]!r}): "
                + where_to_set(session_root),
            )


def dandi_label(value: str) -> str:
    """An id as `dandi organize` writes it in a file name (`m_01.a` -> `m-01-a`)."""
    return _UNSAFE.sub("-", value)


def dandi_path(subject_id: str, session_id: str, modalities: tuple[str, ...]) -> PurePosixPath:
    """`sub-<subject>/sub-<subject>_ses-<session>[_<modalities>].nwb`."""
    subject = f"sub-{dandi_label(subject_id)}"
    suffix = f"_{'+'.join(modalities)}" if modalities else ""
    return PurePosixPath(subject, f"{subject}_ses-{dandi_label(session_id)}{suffix}.nwb")


def dandi_output(
    session: Session, dandiset: Path, metadata: Mapping[str, Any], options: ConversionOptions
) -> Path:
    """Where `session` goes in the dandiset folder: its metadata checked for DANDI, and its
    modalities from its recordings as the file will hold them (`nwb.layout.modalities`; the
    videos' headers are read, nothing is decoded or laid out). A dandiset folder inside the
    recording is refused first (`refuse_writes_inside`)."""
    refuse_writes_inside([session], folders=[dandiset])
    require_dandi_metadata(metadata, session.root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conversion itself reports them
        recordings = plan_recordings(session, probe_videos(session, options), options)
    subject, session_id = metadata["Subject"]["subject_id"], metadata["NWBFile"]["session_id"]
    output = dandiset.joinpath(dandi_path(subject, session_id, modalities(recordings)))
    refuse_writes_inside([session], outputs=[output])  # `sub-x/` may be a link into it
    return output


def claimed_outputs(claims: Path) -> dict[str, Path]:
    """{owner: the dandiset file it claimed} of every claim in `claims` (its latest, by time)."""
    markers = sorted(claims.glob("*.owner"), key=lambda marker: marker.stat().st_mtime_ns)
    owners = (marker.read_text(encoding="utf-8").splitlines() for marker in markers)
    return {lines[0]: Path(lines[1]) for lines in owners if len(lines) >= 2}


def claim_output(path: Path, owner: str, claims: Path) -> None:
    """Make `owner` (a session's key) the one session that writes `path` in a dandiset.

    Two sessions with the same subject_id and session_id get the same name; without a claim
    the second conversion would replace the first one's file. The claim is a small file in
    `claims`, created exclusively, so two runs at once cannot both win.
    """
    marker = claims / f"{hashlib.sha1(str(path).encode()).hexdigest()[:16]}.owner"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        holder = marker.read_text(encoding="utf-8").split("\n", 1)[0]
        if holder != owner:
            raise MiniscopeFormatError(
                path,
                f"is the file of session {holder}, and session {owner} has the same subject_id "
                f"and session_id: give one of them another session_id (or remove {marker} if "
                f"{holder} is gone)",
            ) from None
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{owner}\n{path}\n")
