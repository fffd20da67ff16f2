"""NeuroConv's metadata shapes, out of and back into the library's metadata layers.

`get_metadata()` gives NeuroConv's list shape (`Ophys.Device`, `ImagingPlane`, `OnePhotonSeries`),
or with `use_new_metadata_format=True` its 0.10 dict shape (`Devices`, `Ophys.ImagingPlanes`,
`Ophys.MicroscopySeries`); `run_conversion` takes either back. What the library writes from a
user's value passes on as the `overrides` layer of `resolve_metadata`: the NWBFile and Subject
fields, the imaging-plane facts, and each series' name (the layout gives it: `series_names`).
Every other value must come back as it was given out, or it is refused: the file would not
hold it.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..daq.model import Acquisition, Device, Session
from ..daq.start_time import StartTime
from ..metadata.layers import OPHYS_DEFAULTS, extracted_metadata
from ..metadata.schema import MetadataError

SOURCE = "metadata"  # how errors name the dict a script passes to run_conversion
PLANE_FACTS = ("indicator", "location", "excitation_lambda", "description")
CHANNEL = {
    "name": "OpticalChannel",
    "description": "Green emission light collected by the Miniscope.",
}
NEW_FORMAT_KEYS = ("ImagingPlanes", "MicroscopySeries")


@dataclass(frozen=True)
class ScopeEntry:
    """One imaging interface as its metadata describes it."""

    key: str  # the interface's name in its converter (conversion_options are keyed by it)
    metadata_key: str  # NeuroConv's metadata_key (the dict shape's entry)
    device: Device
    device_name: str  # the scope's NWB device, as the library names it
    rate_hz: float | None

    @property
    def plane_name(self) -> str:
        return f"ImagingPlane{self.device_name}"


def naive_start(start: StartTime | None) -> datetime | None:
    """The DAQ PC's wall clock at Record, to the millisecond, without zone (as NeuroConv)."""
    return None if start is None else start.as_datetime().replace(tzinfo=None)


def earliest(acquisitions: Sequence[Acquisition]) -> StartTime | None:
    starts = [a.start for a in acquisitions if a.start is not None]
    return min(starts, key=lambda s: s.epoch_ms) if starts else None


def _plane(entry: ScopeEntry) -> dict[str, Any]:
    return {
        "name": entry.plane_name,
        "description": OPHYS_DEFAULTS["imaging_plane_description"],
        "indicator": OPHYS_DEFAULTS["indicator"],
        "location": OPHYS_DEFAULTS["location"],
        "excitation_lambda": math.nan,
        "imaging_rate": entry.rate_hz if entry.rate_hz is not None else math.nan,
        "optical_channel": [{**CHANNEL, "emission_lambda": math.nan}],
    }


def _series(entry: ScopeEntry, name: str) -> dict[str, Any]:
    return {"name": name, "unit": OPHYS_DEFAULTS["unit"], "imaging_plane": entry.plane_name}


def list_metadata(
    session: Session, scopes: Sequence[ScopeEntry], series_names: Sequence[str]
) -> dict[str, Any]:
    """NeuroConv's list shape; entries of equal name merged, as NeuroConv's converters do."""
    metadata = copy.deepcopy(extracted_metadata(session))
    start = naive_start(earliest(session.acquisitions))
    if start is not None:
        metadata["NWBFile"]["session_start_time"] = start
    ophys: dict[str, list[dict[str, Any]]] = {
        "Device": [],
        "ImagingPlane": [],
        "OnePhotonSeries": [],
    }
    for scope, name in zip(scopes, series_names, strict=True):
        _add_named(ophys["Device"], {"name": scope.device_name})
        _add_named(ophys["ImagingPlane"], {**_plane(scope), "device": scope.device_name})
        _add_named(ophys["OnePhotonSeries"], _series(scope, name))
    if scopes:
        metadata["Ophys"] = ophys
    return metadata


def dict_metadata(
    session: Session, scopes: Sequence[ScopeEntry], series_names: Sequence[str]
) -> dict[str, Any]:
    """NeuroConv 0.10's dict shape: entries keyed by each interface's metadata_key."""
    metadata = list_metadata(session, [], [])
    devices: dict[str, Any] = {}
    planes: dict[str, Any] = {}
    series: dict[str, Any] = {}
    for scope, name in zip(scopes, series_names, strict=True):
        device_key = _snake(scope.device.name)
        devices[device_key] = {"name": scope.device_name}
        planes[scope.metadata_key] = {**_plane(scope), "device_metadata_key": device_key}
        series[scope.metadata_key] = {
            "name": name,
            "unit": OPHYS_DEFAULTS["unit"],
            "imaging_plane_metadata_key": scope.metadata_key,
        }
    if scopes:
        metadata["Devices"] = devices
        metadata["Ophys"] = {"ImagingPlanes": planes, "MicroscopySeries": series}
    return metadata


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "miniscope"


def _add_named(entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    if all(e.get("name") != entry["name"] for e in entries):
        entries.append(entry)


def is_dict_shaped(metadata: Mapping[str, Any]) -> bool:
    ophys = metadata.get("Ophys") or {}
    return any(key in ophys for key in NEW_FORMAT_KEYS) or "Devices" in metadata


# ---------------------------------------------------------------- back into the library


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (NeuroConv's placeholder for an unknown wavelength)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _refuse(where: str, why: str) -> MetadataError:
    return MetadataError(SOURCE, f"{where}: {why}")


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _unchanged(
    entry: Mapping[str, Any], default: Mapping[str, Any], keep: set[str], where: str
) -> None:
    """Every key of `entry` not in `keep` as `default` gives it, else a one-line refusal."""
    for key, value in entry.items():
        if key in keep:
            continue
        if key not in default or not _same(value, default[key]):
            raise _refuse(
                f"{where}.{key} = {value!r}",
                "not written to the NWB file (the library takes it from the recording), so it "
                "would be lost; leave it as get_metadata() gives it",
            )


@dataclass(frozen=True)
class Translated:
    """A NeuroConv metadata dict as the library's overrides layer and series names."""

    overrides: dict[str, Any]
    series: dict[str, str]  # ScopeEntry.key -> the series name the metadata gives


def translate(
    metadata: Mapping[str, Any],
    session: Session,
    scopes: Sequence[ScopeEntry],
    series_names: Sequence[str],
    indexes: Mapping[str, int],
) -> Translated:
    """`metadata` in either NeuroConv shape, checked against what get_metadata gave out."""
    if not isinstance(metadata, Mapping):
        raise MetadataError(
            SOURCE, f"expected a dict (get_metadata()), not {type(metadata).__name__}"
        )
    given = copy.deepcopy(dict(metadata))
    if is_dict_shaped(given):
        default = dict_metadata(session, scopes, series_names)
        planes, series = _from_dict_shape(given, default, scopes)
    else:
        default = list_metadata(session, scopes, series_names)
        planes, series = _from_list_shape(given, default, scopes, indexes)
    overrides = {k: v for k, v in given.items() if k not in ("Ophys", "Devices", "DeviceModels")}
    nwbfile = dict(overrides.get("NWBFile") or {})
    recorded = earliest(session.acquisitions)
    if nwbfile.get("session_start_time") is not None:
        nwbfile["session_start_time"] = _start_time(nwbfile["session_start_time"], session)
    elif recorded is not None:  # times count from Record, as NeuroConv's do
        nwbfile["session_start_time"] = recorded.as_datetime()
    if nwbfile:
        overrides["NWBFile"] = nwbfile
    if planes:
        overrides["Ophys"] = {"ImagingPlane": _one_per_scope(planes)}
    return Translated(overrides, series)


def _one_per_scope(planes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One imaging plane per Miniscope in the file: a scope's entries merged if they agree."""
    merged: dict[str, dict[str, Any]] = {}
    for plane in planes:
        into = merged.setdefault(plane["device"], {})
        for key, value in plane.items():
            if key in into and not _same(into[key], value):
                raise _refuse(
                    f"Ophys imaging planes of {plane['device']!r}",
                    f"give {key} as {into[key]!r} and {value!r}, but the file holds one imaging "
                    "plane per Miniscope; give it once",
                )
            into[key] = value
    return list(merged.values())


def _plane_facts(
    plane: Mapping[str, Any], default: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The facts of one plane the library writes; the rest must be as given out."""
    if plane.get("name") != default["name"]:
        raise _refuse(
            f"{where}.name = {plane.get('name')!r}",
            f"imaging planes are named by their Miniscope ({default['name']!r}); only series "
            "names can be chosen",
        )
    _unchanged(
        plane, default, {*PLANE_FACTS, "optical_channel", "device", "device_metadata_key"}, where
    )
    facts: dict[str, Any] = {"device": default["daq_name"]}
    facts |= {
        key: plane[key]
        for key in PLANE_FACTS
        if _given(plane.get(key)) and not _same(plane[key], default.get(key))
    }
    channels = plane.get("optical_channel") or []
    if not isinstance(channels, list) or len(channels) != 1:
        raise _refuse(f"{where}.optical_channel", "expected a list of one optical channel")
    _unchanged(
        channels[0],
        default["optical_channel"][0],
        {"emission_lambda"},
        f"{where}.optical_channel[0]",
    )
    if _given(channels[0].get("emission_lambda")):
        facts["optical_channel"] = [
            {"name": CHANNEL["name"], "emission_lambda": channels[0]["emission_lambda"]}
        ]
    return facts


def _from_list_shape(
    given: dict[str, Any],
    default: dict[str, Any],
    scopes: Sequence[ScopeEntry],
    indexes: Mapping[str, int],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    ophys = dict(given.get("Ophys") or {})
    known = default.get("Ophys", {})
    for key in ophys:
        if key not in ("Device", "ImagingPlane", "OnePhotonSeries"):
            raise _refuse(f"Ophys.{key}", "not written by a Miniscope conversion; remove it")
    for index, device in enumerate(ophys.get("Device") or []):
        match = [d for d in known.get("Device", []) if d["name"] == device.get("name")]
        if not match:
            names = [d["name"] for d in known.get("Device", [])]
            raise _refuse(f"Ophys.Device[{index}].name = {device.get('name')!r}",
                          f"devices are named from the DAQ's metaData.json: {names}")  # fmt: skip
        _unchanged(device, match[0], set(), f"Ophys.Device[{index}]")
    planes = []
    for index, plane in enumerate(ophys.get("ImagingPlane") or []):
        match = [p for p in known.get("ImagingPlane", []) if p["name"] == plane.get("name")]
        known_plane = match[0] if match else known["ImagingPlane"][0]
        daq = next(s.device.name for s in scopes if s.plane_name == known_plane["name"])
        planes.append(_plane_facts(plane, {**known_plane, "daq_name": daq},
                                   f"Ophys.ImagingPlane[{index}]"))  # fmt: skip
    entries = ophys.get("OnePhotonSeries") or []
    series = {}
    for scope in scopes:
        index = indexes.get(scope.key, 0)
        if not 0 <= index < len(entries):
            raise _refuse(
                f"photon_series_index {index} of {scope.key}",
                f"Ophys.OnePhotonSeries has {len(entries)} entries",
            )
        entry = entries[index]
        where = f"Ophys.OnePhotonSeries[{index}]"
        _unchanged(entry, _series(scope, ""), {"name"}, where)
        series[scope.key] = _series_name(entry, where)
    return planes, series


def _from_dict_shape(
    given: dict[str, Any], default: dict[str, Any], scopes: Sequence[ScopeEntry]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    ophys = dict(given.get("Ophys") or {})
    for key in ophys:
        if key not in NEW_FORMAT_KEYS:
            raise _refuse(f"Ophys.{key}", "not written by a Miniscope conversion; remove it")
    devices = given.get("Devices") or {}
    for key, device in devices.items():
        known = default.get("Devices", {}).get(key)
        if known is None:
            raise _refuse(
                f"Devices.{key}",
                f"no such device; the devices are {list(default.get('Devices', {}))}",
            )
        _unchanged(device, known, {"type", "device_model_metadata_key"}, f"Devices.{key}")
    planes, series = [], {}
    for key, plane in (ophys.get("ImagingPlanes") or {}).items():
        known = default["Ophys"]["ImagingPlanes"].get(key)
        if known is None:
            raise _refuse(f"Ophys.ImagingPlanes.{key}", _keys_are(scopes))
        scope = next(s for s in scopes if s.metadata_key == key)
        where = f"Ophys.ImagingPlanes.{key}"
        planes.append(_plane_facts(plane, {**known, "daq_name": scope.device.name}, where))
    entries = ophys.get("MicroscopySeries") or {}
    for key in entries:
        if key not in default["Ophys"]["MicroscopySeries"]:
            raise _refuse(f"Ophys.MicroscopySeries.{key}", _keys_are(scopes))
    for scope in scopes:
        known = default["Ophys"]["MicroscopySeries"][scope.metadata_key]
        entry = entries.get(scope.metadata_key, known)
        where = f"Ophys.MicroscopySeries.{scope.metadata_key}"
        _unchanged(
            entry,
            {**known, "description": "Imaging data acquired with a Miniscope."},
            {"name"},
            where,
        )
        series[scope.key] = _series_name(entry, where)
    return planes, series


def _keys_are(scopes: Sequence[ScopeEntry]) -> str:
    return f"no interface has this metadata_key; they are {[s.metadata_key for s in scopes]}"


def _series_name(entry: Mapping[str, Any], where: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise _refuse(f"{where}.name = {name!r}", "expected a series name (text without '/')")
    return name


def _start_time(value: Any, session: Session) -> datetime:
    """The start a script gives: naive is the DAQ PC's wall clock; an instant must be Record's.

    Every time in the file counts from it as NeuroConv's do from the recorded start, so a start
    at another instant (a time zone other than the PC's) would move every frame: refused.
    """
    start = earliest(session.acquisitions)
    if not isinstance(value, datetime):
        raise _refuse(f"NWBFile.session_start_time = {value!r}", "expected a datetime")
    if start is None:
        if value.utcoffset() is None:
            raise _refuse(
                "NWBFile.session_start_time",
                "has no time zone and the recording gives none: .replace(tzinfo=ZoneInfo(...))",
            )
        return value
    recorded = start.as_datetime()
    if value.utcoffset() is None:
        value = value.replace(tzinfo=recorded.tzinfo)
    if start.zone_assumed:
        return value
    if value != recorded:
        offset = timedelta(minutes=start.utc_offset_minutes)
        raise _refuse(
            f"NWBFile.session_start_time = {value.isoformat()}",
            f"is not the recorded start {recorded.isoformat()} (the DAQ PC's clock, "
            f"{timezone(offset)}); frames count from it, so keep the recorded instant "
            "(its zone may be written differently) or shift them with set_aligned_starting_time",
        )
    return value
