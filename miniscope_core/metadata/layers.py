"""The NWB metadata of a session: one policy for the command line, Python and Dagster.

Layers, later wins: what the recording says < a lab-wide file < the session folder's own
`nwb_metadata.yaml` < the user's file (`--metadata`) < a dict (Dagster run config, Python).
Each layer is checked on its own against `metadata_schema`, so an error names the file it is in,
and all of it happens before any video is decoded. The shape is described in `metadata_schema`.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from ..daq.model import Session
from .schema import MetadataError, check_date_of_birth, validate_metadata

SESSION_METADATA_FILE = "nwb_metadata.yaml"
OVERRIDES_SOURCE = "metadata"
MERGED_SOURCE = "merged metadata"
# What the imaging plane gets for a fact nobody gave: NWB requires every one of them.
OPHYS_DEFAULTS: dict[str, Any] = {
    "indicator": "unknown",
    "location": "unknown",
    "excitation_lambda": float("nan"),
    "emission_lambda": float("nan"),
    "imaging_plane_description": "The plane imaged by the Miniscope.",
    # NeuroConv's unit for raw camera counts, which readers show as is: "px" names no intensity.
    "unit": "n.a.",
}


def resolve_metadata(
    session: Session,
    lab_file: Path | str | None = None,
    user_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """extracted from the recording < lab-wide file < session folder's nwb_metadata.yaml < user
    file (--metadata) < overrides (Dagster run config / Python dict)

    Returns our shape with pynwb-ready values (aware datetimes, lists, floats); keys nobody gave
    are absent. Raises MetadataError naming the file, key, value and what is expected, also for
    a Subject.date_of_birth after the session's start (`check_birth_before_start`).
    """
    scopes = _scope_names(session)
    merged: dict[str, Any] = {}
    given: dict[str, Path | str] = {}  # "Section.key" -> the layer its value comes from
    for source, layer in _layers(session, lab_file, user_file, overrides):
        checked = validate_metadata(layer, source, scopes)
        for section, values in checked.items():
            given.update({f"{section}.{key}": source for key in values})
        merged = deep_merge(merged, checked)
    resolved = validate_metadata(merged, MERGED_SOURCE, scopes)
    check_birth_before_start(resolved, session, given)
    return resolved


def check_birth_before_start(
    metadata: dict[str, Any], session: Session, given: dict[str, Path | str] | None = None
) -> None:
    """Refuse a `Subject.date_of_birth` after the session's start, in one line naming the
    metadata file that gives it (`given` maps "Section.key" to its layer): the start is the
    user's `NWBFile.session_start_time`, else the first recorded acquisition start (no video
    needed). Without either the check waits: `session_clock` will ask for a start time."""
    birth = (metadata.get("Subject") or {}).get("date_of_birth")
    if birth is None:
        return
    given = given or {}
    start = (metadata.get("NWBFile") or {}).get("session_start_time")
    if start is not None:
        where = "NWBFile.session_start_time in "
        where += str(given.get("NWBFile.session_start_time", MERGED_SOURCE))
    else:
        recorded = [(a.start, a.folder) for a in session.acquisitions if a.start is not None]
        if not recorded:
            return
        first, folder = min(recorded, key=lambda pair: pair[0].epoch_ms)
        start, where = first.as_datetime(), f"the recorded start of {folder}"
    check_date_of_birth(birth, start, given.get("Subject.date_of_birth", MERGED_SOURCE), where)


def _layers(
    session: Session,
    lab_file: Path | str | None,
    user_file: Path | str | None,
    overrides: dict[str, Any] | None,
) -> list[tuple[Path | str, Any]]:
    """(source, contents) of every layer given, lowest precedence first."""
    layers: list[tuple[Path | str, Any]] = [
        (session.acquisitions[0].folder / "metaData.json", extracted_metadata(session))
    ]
    own = session.root / SESSION_METADATA_FILE
    files = [lab_file, own if own.is_file() else None, user_file]
    layers += [(Path(path), load_metadata_file(path)) for path in files if path is not None]
    if overrides is not None:
        layers.append((OVERRIDES_SOURCE, overrides))
    return layers


def _scope_names(session: Session) -> dict[str, str]:
    """Each Miniscope's DAQ name -> its NWB name, so metadata may use either."""
    return {name: camel(name) for name in session.device_names("miniscope")}


def load_metadata_file(path: Path | str) -> dict[str, Any]:
    """A YAML or JSON metadata file as a dict, or a one-line MetadataError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MetadataError(path, f"cannot be read ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise MetadataError(path, f"is not UTF-8 text (byte {error.start})") from error
    try:
        value = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise MetadataError(path, f"is not valid JSON: {error.msg} at {where}") from error
    except yaml.YAMLError as error:
        raise MetadataError(path, f"is not valid YAML: {_yaml_problem(error)}") from error
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataError(
            path, f"expected a mapping of NWBFile, Subject, Ophys, not {type(value).__name__}"
        )
    return value


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{problem}{where}"


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
    metadata: dict[str, Any] = {"NWBFile": nwbfile}
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


def ophys_for(metadata: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Imaging-plane facts for one scope: defaults, `Ophys`, then `Ophys.devices.<name>`."""
    ophys = dict(metadata.get("Ophys") or {})
    per_device = ophys.pop("devices", {}) or {}
    return {**OPHYS_DEFAULTS, **ophys, **(per_device.get(device_name) or {})}


def camel(name: str) -> str:
    """NeuroConv-style names: `miniscope_side` -> `MiniscopeSide`, `BehavCam 2` -> `BehavCam2`."""
    parts = re.split(r"[^0-9A-Za-z]+", name)
    return "".join(part[:1].upper() + part[1:] for part in parts if part) or "Device"
