"""User metadata (YAML/JSON or a dict) merged over what was read from the recording.

The top-level `NWBFile` and `Subject` sections use NWB field names, like NeuroConv's metadata, so a
lab's existing files work unchanged. `Ophys` holds imaging-plane facts the DAQ never records.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from .errors import MiniscopeFormatError
from .session import Session

OPHYS_DEFAULTS: dict[str, Any] = {
    "indicator": "unknown",
    "location": "unknown",
    "excitation_lambda": float("nan"),
    "emission_lambda": float("nan"),
    "imaging_plane_description": "The plane imaged by the Miniscope.",
}


def load_metadata_file(path: Path | str) -> dict[str, Any]:
    """A YAML or JSON metadata file as a dict, or an error that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror})") from error
    try:
        value = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise MiniscopeFormatError(
            path, f"is not valid {path.suffix[1:].upper()}: {error}"
        ) from error
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MiniscopeFormatError(path, "must hold a mapping (NWBFile:, Subject:, Ophys: ...)")
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` wins; nested mappings merge key by key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def extracted_metadata(session: Session) -> dict[str, Any]:
    """What the DAQ's session metaData.json says about the experiment and the animal."""
    first = session.acquisitions[0].metadata
    nwbfile: dict[str, Any] = {
        "session_description": _description(first, len(session.acquisitions)),
        "session_id": session.root.name,
    }
    if first.get("researcherName"):
        nwbfile["experimenter"] = [str(first["researcherName"])]
    if first.get("experimentName"):
        nwbfile["experiment_description"] = f"Experiment {first['experimentName']!r}."
    metadata: dict[str, Any] = {"NWBFile": nwbfile, "Ophys": dict(OPHYS_DEFAULTS)}
    if first.get("animalName"):
        metadata["Subject"] = {"subject_id": str(first["animalName"])}
    return metadata


def _description(first: dict[str, Any], n_acquisitions: int) -> str:
    animal = first.get("animalName") or "unknown animal"
    experiment = first.get("experimentName")
    where = f" in experiment {experiment!r}" if experiment else ""
    return (
        f"UCLA Miniscope recording of {animal}{where} "
        f"({n_acquisitions} acquisition{'s' if n_acquisitions != 1 else ''})."
    )


def session_metadata(
    session: Session, user: dict[str, Any] | None = None, path: Path | str | None = None
) -> dict[str, Any]:
    """Extracted metadata, then the user's file, then the user's dict (last wins)."""
    merged = extracted_metadata(session)
    if path is not None:
        merged = deep_merge(merged, load_metadata_file(path))
    return deep_merge(merged, user or {})


def ophys_for(metadata: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Imaging-plane facts for one scope: `Ophys` defaults, then `Ophys.devices.<name>`."""
    ophys = dict(metadata.get("Ophys") or {})
    per_device = ophys.pop("devices", {}) or {}
    return {**ophys, **(per_device.get(device_name) or {})}
