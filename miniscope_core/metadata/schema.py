"""What a lab may put in an NWB metadata file, checked before anything is decoded.

Sections `NWBFile` and `Subject` use pynwb's (and NeuroConv's) field names; values are held to
DANDI's rules, so a file that passes here does not fail the archive's checks for sex, species,
age or weight. `Ophys` is ours: `indicator`, `location`, `excitation_lambda`, `emission_lambda`,
`imaging_plane_description`, `unit` (of the image series), and the same keys per scope under
`devices: <device name>:`.

NeuroConv's list shape inside `Ophys` is mapped to ours (see `_from_neuroconv`):
- `ImagingPlane[i]`: `indicator`, `location`, `excitation_lambda`, `description` (->
  `imaging_plane_description`) and `optical_channel[0].emission_lambda`. One plane applies to every
  scope; with several, each goes to the scope its `device` names, or else its name does
  (`ImagingPlaneMiniscope` -> `Miniscope`, the NWB names of our layout).
- `name`, `device` and `imaging_plane` only link entries (a `Device` entry holds nothing else);
  the layout names objects itself.
- Everything else (`Device` descriptions and settings, `OnePhotonSeries` descriptions and units,
  `imaging_rate`, optical channel descriptions, a second optical channel, other `Ophys` lists)
  has nowhere to go in the file we write, so it is refused rather than dropped.
Other modalities' sections (NeuroConv's `Ecephys`, `Behavior`, ...) are ignored with a warning.
A null value means "not given": an empty `Subject:` in a template clears nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from ..errors import MiniscopeFormatError, MiniscopeWarning

SEXES = ("M", "F", "U", "O")
IGNORED_SECTIONS = (
    "Audio",
    "Behavior",
    "DeviceModels",
    "Devices",
    "Ecephys",
    "Events",
    "FiberPhotometry",
    "Icephys",
    "Images",
    "MedPC",
    "Ogen",
    "Pose",
    "PoseEstimation",
    "TimeIntervals",
    "TimeSeries",
)
# DANDI's rules as nwbinspector checks them (check_subject_age, _species_form, _weight).
_DURATION = re.compile(
    r"P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?"
)
_SPECIES = re.compile(r"[A-Z][a-z]* [a-z]+|http://purl\.obolibrary\.org/obo/NCBITaxon_\d+")
_WEIGHT = re.compile(r"\d+(\.\d+)? (kg|g|mg|ug|μg|ng|pg)", re.IGNORECASE)
_REPR_LIMIT = 80


class MetadataError(MiniscopeFormatError):
    """User metadata that pynwb or DANDI would refuse: names the file, key, value and the fix."""


class MetadataWarning(MiniscopeWarning):
    """Part of a metadata file that is not used (another modality, a scope not recorded)."""


def _expected(text: str) -> PydanticCustomError:
    return PydanticCustomError("expected", "expected " + text)


def _text(value: Any) -> str:
    """Numbers become text (`subject_id: 42` is common in YAML); nothing else does."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _expected("text")


def _text_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    try:
        return [_text(item) for item in items]
    except PydanticCustomError:
        raise _expected("text or a list of text") from None


def _aware_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value
    raise _expected("an ISO 8601 date and time with a UTC offset, e.g. '2024-01-15T11:34:45-08:00'")


def _wavelength(value: Any) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise _expected("a positive number of nanometres, e.g. 470 (leave it out if unknown)")
    return float(value)


def _sex(value: Any) -> str:
    if value not in SEXES:
        raise _expected(f"one of {', '.join(SEXES)} (DANDI)")
    return value


def _species(value: Any) -> str:
    if not isinstance(value, str) or not _SPECIES.fullmatch(value):
        raise _expected(
            "a Latin binomial such as 'Mus musculus' or an NCBI taxonomy URL such as "
            "'http://purl.obolibrary.org/obo/NCBITaxon_10090' (DANDI)"
        )
    return value


def _is_age(value: str) -> bool:
    if _DURATION.fullmatch(value):
        return True
    low, slash, high = value.partition("/")
    bounds = [bound for bound in (low, high) if bound]
    return bool(slash and bounds) and all(_DURATION.fullmatch(bound) for bound in bounds)


def _age(value: Any) -> str:
    if not isinstance(value, str) or not _is_age(value):
        raise _expected(
            "an ISO 8601 duration such as 'P90D' (90 days) or 'P12W', or a range such as "
            "'P90D/P120D' (DANDI)"
        )
    return value


def _age_reference(value: Any) -> str:
    if value not in ("birth", "gestational"):
        raise _expected("'birth' or 'gestational'")
    return value


def _weight(value: Any) -> str:
    if not isinstance(value, str) or not _WEIGHT.fullmatch(value):
        raise _expected("a number and a unit such as '25 g' (kg, g, mg, ug, ng, pg)")
    return value


# Each type: its value or null (= not given), after a check that gives the user a precise
# expectation instead of pydantic's generic one.
Text: TypeAlias = Annotated[str, BeforeValidator(_text)] | None
TextList: TypeAlias = Annotated[list[str], BeforeValidator(_text_list)] | None
AwareDatetime: TypeAlias = Annotated[datetime, BeforeValidator(_aware_datetime)] | None
Wavelength: TypeAlias = Annotated[float, BeforeValidator(_wavelength)] | None
Species: TypeAlias = Annotated[str, BeforeValidator(_species)] | None
Sex: TypeAlias = Annotated[str, BeforeValidator(_sex)] | None
Age: TypeAlias = Annotated[str, BeforeValidator(_age)] | None
AgeReference: TypeAlias = Annotated[str, BeforeValidator(_age_reference)] | None
Weight: TypeAlias = Annotated[str, BeforeValidator(_weight)] | None


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Section(BaseModel):
    """A mapping with known keys; an unknown key is refused by name, with a suggestion."""

    model_config = ConfigDict(extra="forbid")
    refusals: ClassVar[dict[str, str]] = {}

    @classmethod
    def unknown(cls, key: Any) -> str:
        return "unknown key" + did_you_mean(str(key), list(cls.model_fields))

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Unknown keys reported with, not instead of, the other errors of the mapping."""
        if not isinstance(data, Mapping) or all(key in cls.model_fields for key in data):
            return handler(data)
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("unknown_key", cls.refusals.get(key) or cls.unknown(key)),
                loc=(key,),
                input=value,
            )
            for key, value in data.items()
            if key not in cls.model_fields
        ]
        try:
            handler({k: v for k, v in data.items() if k in cls.model_fields})
        except ValidationError as error:
            errors += [_again(detail) for detail in error.errors()]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def _again(detail: ErrorDetails) -> InitErrorDetails:
    """An error of a nested mapping, to be raised again with the unknown keys around it."""
    return InitErrorDetails(
        type=PydanticCustomError(detail["type"], detail["msg"]),
        loc=detail["loc"],
        input=detail["input"],
    )


class NWBFileFields(_Section):
    """The pynwb.NWBFile arguments a lab sets; the rest come from the recording."""

    refusals: ClassVar[dict[str, str]] = {
        "source_script": "written by miniscope-nwb (which program made the file); remove it",
        "source_script_file_name": "written by miniscope-nwb; remove it",
    }

    session_description: Text = None
    identifier: Text = None
    session_id: Text = None
    session_start_time: AwareDatetime = None
    experimenter: TextList = None
    experiment_description: Text = None
    institution: Text = None
    lab: Text = None
    keywords: TextList = None
    related_publications: TextList = None
    notes: Text = None
    pharmacology: Text = None
    protocol: Text = None
    surgery: Text = None
    virus: Text = None
    stimulus_notes: Text = None
    data_collection: Text = None
    slices: Text = None


class SubjectFields(_Section):
    """pynwb.file.Subject arguments, held to DANDI's forms."""

    subject_id: Text = None
    species: Species = None
    sex: Sex = None
    age: Age = None
    age__reference: AgeReference = None
    date_of_birth: AwareDatetime = None
    description: Text = None
    genotype: Text = None
    strain: Text = None
    weight: Weight = None


class PlaneFields(_Section):
    """What the DAQ never records about an imaging plane, for one scope or all."""

    indicator: Text = None
    location: Text = None
    excitation_lambda: Wavelength = None
    emission_lambda: Wavelength = None
    imaging_plane_description: Text = None
    unit: Text = None  # of the scope's image series: what its pixel values count


class _NeuroConvEntry(_Section):
    """An entry of NeuroConv's list shape: keys we cannot write are refused, not dropped."""

    @classmethod
    def unknown(cls, key: Any) -> str:
        used = ", ".join(cls.model_fields)
        return (
            f"not written to the NWB file (this entry uses only {used}), so it would be lost; "
            f"remove it{did_you_mean(str(key), list(cls.model_fields))}"
        )


class NeuroConvDevice(_NeuroConvEntry):
    """Devices are described from the DAQ's metaData.json; only the name links entries."""

    name: Text = None


class NeuroConvOpticalChannel(_NeuroConvEntry):
    name: Text = None
    emission_lambda: Wavelength = None


def _one_channel(value: Any) -> Any:
    if isinstance(value, list) and len(value) > 1:
        raise _expected("one optical channel: a Miniscope records one emission band")
    return value


OpticalChannels: TypeAlias = (
    Annotated[list[NeuroConvOpticalChannel], BeforeValidator(_one_channel)] | None
)


class NeuroConvImagingPlane(_NeuroConvEntry):
    name: Text = None
    device: Text = None
    description: Text = None
    indicator: Text = None
    location: Text = None
    excitation_lambda: Wavelength = None
    optical_channel: OpticalChannels = None

    def facts(self) -> dict[str, Any]:
        """This plane in our `Ophys` keys (given values only)."""
        channels = self.optical_channel or []
        facts = {
            "indicator": self.indicator,
            "location": self.location,
            "excitation_lambda": self.excitation_lambda,
            "emission_lambda": channels[0].emission_lambda if channels else None,
            "imaging_plane_description": self.description,
        }
        return {key: value for key, value in facts.items() if value is not None}


class NeuroConvSeries(_NeuroConvEntry):
    """Series are named and described from the recording; only the links are accepted."""

    name: Text = None
    imaging_plane: Text = None


class OphysFields(PlaneFields):
    """Our keys (for all scopes), per-scope `devices`, or NeuroConv's lists."""

    refusals: ClassVar[dict[str, str]] = {
        key: "NeuroConv's dict-based metadata is not read here; use its list form "
        "(Device, ImagingPlane, OnePhotonSeries) or indicator, location, ..."
        for key in ("ImagingPlanes", "MicroscopySeries", "Devices")
    }

    devices: dict[str, PlaneFields] | None = None
    Device: list[NeuroConvDevice] | None = None
    ImagingPlane: list[NeuroConvImagingPlane] | None = None
    OnePhotonSeries: list[NeuroConvSeries] | None = None


class MetadataFields(BaseModel):
    """A whole layer; unknown and ignored sections are sorted out before (`validate_metadata`)."""

    model_config = ConfigDict(extra="forbid")

    NWBFile: NWBFileFields | None = None
    Subject: SubjectFields | None = None
    Ophys: OphysFields | None = None


SECTIONS = list(MetadataFields.model_fields)


def validate_metadata(data: Any, source: Path | str, scopes: Mapping[str, str]) -> dict[str, Any]:
    """One layer of metadata checked and in our shape: only given keys, pynwb-ready values.

    `scopes` maps the DAQ name of each Miniscope of the session to its NWB name (`camel`); a
    scope may be named either way, and `Ophys.devices` is keyed by DAQ names afterwards.
    """
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise MetadataError(source, f"expected a mapping of {', '.join(SECTIONS)}, not {kind}")
    problems, kept = [], {}
    for key, value in data.items():
        if key in SECTIONS:
            kept[key] = value
        elif key in IGNORED_SECTIONS:
            warnings.warn(
                f"{source}: {key}: section ignored (miniscope-nwb writes NWBFile, Subject and "
                "Ophys metadata only)",
                MetadataWarning,
                stacklevel=2,
            )
        else:
            problems.append(f"{key}: unknown section{did_you_mean(str(key), SECTIONS)}")
    try:
        fields = MetadataFields.model_validate(kept)
    except ValidationError as error:
        problems += [_problem(detail) for detail in error.errors()]
    if problems:
        raise MetadataError(source, "; ".join(dict.fromkeys(problems)))
    shaped = fields.model_dump(exclude_none=True, include={"NWBFile", "Subject"})
    if fields.Ophys is not None:
        shaped["Ophys"] = _ophys(fields.Ophys, source, scopes)
    return {section: values for section, values in shaped.items() if values}


def check_date_of_birth(
    date_of_birth: datetime, session_start: datetime, source: Path | str, start_from: str
) -> None:
    """A MetadataError naming `source` when the subject was born after the session started
    (`start_from` says where that start comes from); both are aware datetimes."""
    if date_of_birth > session_start:
        raise MetadataError(
            source,
            f"Subject.date_of_birth = {date_of_birth.isoformat()}: after the session start "
            f"{session_start.isoformat()} ({start_from}); expected the date the animal was born, "
            "before the recording",
        )


def _problem(detail: ErrorDetails) -> str:
    """One pydantic error as `key.path = value: expectation`."""
    expectation = {
        "model_type": "expected a mapping of keys",
        "dict_type": "expected a mapping of device names to indicator, location, ...",
        "list_type": "expected a list (NeuroConv's list form)",
    }.get(detail["type"], detail["msg"])
    return f"{_path(detail['loc'])} = {_short(detail['input'])}: {expectation}"


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _ophys(ophys: OphysFields, source: Path | str, scopes: Mapping[str, str]) -> dict[str, Any]:
    ours = ophys.model_dump(exclude_none=True, include={*PlaneFields.model_fields, "devices"})
    if not ophys.ImagingPlane:
        if "devices" in ours:
            ours["devices"] = _recorded_scopes(ours["devices"], source, scopes)
        return ours
    if ours:
        raise MetadataError(
            source,
            f"Ophys: {', '.join(ours)} and ImagingPlane given together: use either these keys or "
            "NeuroConv's ImagingPlane list in one file, not both",
        )
    return _from_neuroconv(ophys.ImagingPlane, source, scopes)


def _daq_name(name: str | None, scopes: Mapping[str, str]) -> str | None:
    """The DAQ name of the scope called `name` by the DAQ or in the NWB file, if recorded."""
    if name in scopes:
        return name
    return next((daq for daq, nwb in scopes.items() if nwb == name), None)


def _recorded_scopes(
    devices: dict[str, Any], source: Path | str, scopes: Mapping[str, str]
) -> dict[str, Any]:
    """Per-scope keys under DAQ names; a scope not in this session is reported and left out.

    Not an error: a lab-wide file may describe the scopes of several rigs.
    """
    found: dict[str, Any] = {}
    for name, facts in devices.items():
        daq = _daq_name(name, scopes)
        if daq is None:
            warnings.warn(
                f"{source}: Ophys.devices.{name}: no Miniscope of that name in this session "
                f"({', '.join(scopes) or 'none'}); ignored{did_you_mean(name, list(scopes))}",
                MetadataWarning,
                stacklevel=3,
            )
        elif facts:
            found[daq] = {**found.get(daq, {}), **facts}
    return found


def _from_neuroconv(
    planes: list[NeuroConvImagingPlane], source: Path | str, scopes: Mapping[str, str]
) -> dict[str, Any]:
    """NeuroConv's ImagingPlane list as our keys: one plane for all scopes, else one per scope."""
    if len(planes) == 1 and not (len(scopes) > 1 and _scope_of(planes[0], scopes)):
        return planes[0].facts()
    devices: dict[str, Any] = {}
    for index, plane in enumerate(planes):
        where = (
            f"Ophys.ImagingPlane[{index}] = {_short(plane.model_dump(include={'name', 'device'}))}"
        )
        scope = _scope_of(plane, scopes)
        if scope is None:
            names = ", ".join(sorted(scopes.values())) or "none"
            raise MetadataError(
                source,
                f"{where}: expected device (or name ImagingPlane<name>) to name one of this "
                f"session's Miniscopes: {names}",
            )
        if scope in devices:
            raise MetadataError(source, f"{where}: expected one plane per Miniscope ({scope!r})")
        devices[scope] = plane.facts()
    return {"devices": devices}


def _scope_of(plane: NeuroConvImagingPlane, scopes: Mapping[str, str]) -> str | None:
    """The scope a plane names by `device`, or else by its name `ImagingPlane<name>`."""
    named = (plane.name or "").removeprefix("ImagingPlane")
    return _daq_name(plane.device, scopes) or _daq_name(named, scopes)
