"""Every setting of the deployment (where sessions are, how the sensor watches them, how runs
execute, what the checks allow) and the lab's conversion defaults, each defined once, here.

Values come from, later wins: the defaults below < a settings file named by
`MINISCOPE_SETTINGS_FILE` (YAML or TOML, keys are the field names) < `MINISCOPE_<FIELD>`
environment variables < explicit overrides (command line flags, run config). The conversion
defaults are `ConversionOptions`' own, so the library and the automation cannot drift apart.
A bad value is refused with one line naming where it came from, e.g.
`MINISCOPE_SETTLE_SECONDS='soon': expected a number of seconds, 0 or more`. The raw root is only
read: an output root inside it (or the same folder, through links too) is refused, naming both.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict
from pydantic_core import ErrorDetails, PydanticCustomError

from miniscope_core import (
    BACKENDS,
    DANDI_LAYOUT,
    DEFLATE_ENGINES,
    LAB_OPTIONS,
    OPTIONS,
    ConversionOptions,
    Deflater,
    Thresholds,
    did_you_mean,
)

PREFIX = "MINISCOPE_"
SETTINGS_FILE_VARIABLE = PREFIX + "SETTINGS_FILE"
_CHECKOUT = Path(__file__).resolve().parents[1]
DEMO_DATA = (_CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()) / "demo_data"
# Names that worked before the model; still read, below the canonical name.
_LEGACY_VARIABLES = {"sensor_interval_seconds": (PREFIX + "SENSOR_INTERVAL",)}
# The lab's defaults of ConversionOptions' own fields (dandi_layout is a naming choice).
CONVERSION_SETTINGS = tuple(name for name in LAB_OPTIONS if name != DANDI_LAYOUT.name)
_OWN_MESSAGE = "setting"  # error type whose message replaces "expected ..."
_RAW_OUTPUT = "output_in_raw"  # error type of an output root inside the raw root
_RAW_ONLY_READ = (
    "the raw root is only read, nothing is written inside it; choose an output root outside it"
)
Executor = Literal["in_process", "multiprocess", "celery"]
EXECUTORS: tuple[str, ...] = get_args(Executor)
_LOCAL_REDIS = "redis://127.0.0.1:6379/0"


_THRESHOLDS = Thresholds()


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line naming its source and value."""


def _lab(name: str, expected: str, **constraints: Any) -> Any:
    """A lab default of the conversion option `name`: its default and meaning as declared."""
    option = OPTIONS[name]
    return _setting(option.default, option.help, expected, **constraints)


def _setting(default: Any, meaning: str, expected: str, **constraints: Any) -> Any:
    """A field whose README row says `meaning` and whose error says `expected`."""
    extra: JsonDict = {"expected": expected}
    return Field(default, description=meaning, json_schema_extra=extra, **constraints)


class MiniscopeSettings(BaseModel):
    """Where sessions are read and written, how the sensor watches them, how they convert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw_root: Path = _setting(
        DEMO_DATA / "raw", "Session folders (read only); one partition per folder.", "a path"
    )
    output_root: Path = _setting(
        DEMO_DATA / "nwb", "Everything written for a session: `<output_root>/<key>/`.", "a path"
    )
    reports_url: str | None = _setting(
        None,
        "The http(s) URL at which the output root is served (docs/dagster.md), so the links "
        "Dagster shows to the QC reports, files and overview open from its UI; none: file:// "
        "links.",
        "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/, or empty for none",
    )
    metadata_file: Path | None = _setting(
        None,
        "Lab-wide NWB metadata (YAML); a session's own `nwb_metadata.yaml` is merged over it.",
        "a file path, or empty for none",
    )
    keep_chunks: bool = _setting(
        True,
        "Keep the compressed chunk files, so a session that grows re-decodes only new videos.",
        "true or false",
    )
    settle_seconds: float = _setting(
        60.0,
        "A folder is handed over only once no file in it is newer than this.",
        "a number of seconds, 0 or more",
        ge=0,
    )
    stale_seconds: float = _setting(
        3600.0,
        "An incomplete folder unchanged this long is converted anyway (crashes never complete).",
        "a number of seconds, 0 or more",
        ge=0,
    )
    max_new_per_tick: int = _setting(
        50,
        "At most this many sessions handed over per sensor tick.",
        "a whole number, 1 or more",
        ge=1,
    )
    # The QC report's limits, which its checks on nwb_file warn beyond (defaults: the library's).
    qc_dropped_percent: float = _setting(
        _THRESHOLDS.dropped_percent,
        "The dropped-frames check warns when a device lost more than this % of its frames.",
        "a percentage between 0 and 100",
        ge=0,
        le=100,
    )
    qc_max_motion_px: float = _setting(
        _THRESHOLDS.max_motion_px,
        "The motion check warns when the field of view moved more than this many pixels.",
        "a number of pixels, 0 or more",
        ge=0,
    )
    qc_brightness_drift_percent: float = _setting(
        _THRESHOLDS.brightness_drift_percent,
        "The brightness check warns when the mean brightness drifted more than this % either "
        "way (first tenth of the frames against the last).",
        "a percentage, 0 or more",
        ge=0,
    )
    sensor_interval_seconds: int = _setting(
        30, "Seconds between two sensor ticks.", "a whole number of seconds, 1 or more", ge=1
    )
    executor: Executor = _setting(
        "in_process",
        "Where a run's steps execute: in_process (one after another in the run's process), "
        "multiprocess (a process per step, this machine), celery (Celery workers on any machine).",
        "one of " + ", ".join(EXECUTORS),
    )
    celery_broker: str = _setting(
        _LOCAL_REDIS,
        "Celery broker URL the runs send steps to and the workers listen on (executor celery).",
        "a broker URL such as redis://HOST:6379/0",
        min_length=1,
    )
    celery_backend: str = _setting(
        _LOCAL_REDIS,
        "Celery result backend URL where the workers put each step's events (executor celery).",
        "a result backend URL such as redis://HOST:6379/0",
        min_length=1,
    )
    # An hour: above the longest step of any session this machine's measurements extrapolate to
    # (docs/cluster.md, "When a worker dies"), yet a lost step waits half as long as it did.
    celery_requeue_seconds: int = _setting(
        3600,
        "A step whose Celery worker vanished (machine down, worker killed) runs again on a live "
        "worker this long after a worker took it; keep it above the longest step, else a slow "
        "step runs twice.",
        "a whole number of seconds, 1 or more",
        ge=1,
    )

    # The lab's conversion defaults: defaults and meanings are the library's (`OPTIONS`).
    per_acquisition: bool = _lab("per_acquisition", "true or false")
    strict: bool = _lab("strict", "true or false")
    embed_cameras: bool = _lab("embed_cameras", "true or false")
    neuroconv_names: bool = _lab("neuroconv_names", "true or false")
    dandi_layout: bool = _lab("dandi_layout", "true or false")
    deflate_engine: str = _lab("deflate_engine", "one of " + ", ".join(sorted(DEFLATE_ENGINES)))
    compression_level: int = _lab("compression_level", "a whole number (isal 0-3, zlib 0-9)")
    frames_per_chunk: int = _lab("frames_per_chunk", "a whole number, 1 or more", ge=1)
    backend: str = _lab("backend", "one of " + ", ".join(BACKENDS))

    @field_validator("metadata_file", "reports_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """An empty variable means none (no lab-wide file, as it always has; no URL)."""
        return None if value == "" else value

    @field_validator("reports_url")
    @classmethod
    def _served_url(cls, url: str | None) -> str | None:
        """http(s)://host[:port][/path], ending in one `/` so a relative path is appended."""
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises for a port that is not a number or out of range)
        except ValueError:
            raise ValueError("not a URL") from None
        odd = any(c.isspace() for c in url) or parts.query or parts.fragment
        if parts.scheme not in ("http", "https") or not parts.hostname or odd:
            raise ValueError("not an http(s) URL with a host")
        return url.rstrip("/") + "/"

    @field_validator("deflate_engine")
    @classmethod
    def _known_engine(cls, engine: str) -> str:
        if engine not in DEFLATE_ENGINES:
            raise ValueError("unknown engine")
        return engine

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str) -> str:
        if backend not in BACKENDS:
            raise ValueError("unknown backend")
        return backend

    @field_validator("compression_level")
    @classmethod
    def _level_of_engine(cls, level: int, info: ValidationInfo) -> int:
        """The level's range depends on the engine (declared before it, so already checked)."""
        engine = info.data.get("deflate_engine")
        if engine is not None:
            try:
                Deflater(engine, level)
            except ValueError as error:
                raise PydanticCustomError(_OWN_MESSAGE, str(error)) from None
        return level

    @model_validator(mode="after")
    def _output_outside_raw(self) -> MiniscopeSettings:
        """Nothing is ever written inside the raw root: an output root there (or equal to it)
        is refused as the settings load (real paths, so a link into it is caught too)."""
        raw, output = (path.expanduser().resolve() for path in (self.raw_root, self.output_root))
        if output.is_relative_to(raw):
            where = "is the same folder as" if output == raw else "is inside"
            raise PydanticCustomError(
                _RAW_OUTPUT,
                "output_root {output} {where} raw_root {raw}: " + _RAW_ONLY_READ,
                {"output": str(self.output_root), "where": where, "raw": str(self.raw_root)},
            )
        return self

    @classmethod
    def variables(cls, name: str) -> tuple[str, ...]:
        """The environment variables of field `name`: `MINISCOPE_<NAME>`, then older names."""
        return (PREFIX + name.upper(), *_LEGACY_VARIABLES.get(name, ()))

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> MiniscopeSettings:
        """Defaults < settings file < environment < `overrides` that are not None."""
        environ = os.environ if environ is None else environ
        given = _file_values(environ.get(SETTINGS_FILE_VARIABLE))
        given.update(_environment_values(environ))
        given.update({k: (k, v) for k, v in overrides.items() if v is not None})
        return cls._validated(given)

    @classmethod
    def _validated(cls, given: dict[str, tuple[str, Any]]) -> MiniscopeSettings:
        """The model from {field: (source, value)}; errors name each value's source."""
        try:
            return cls.model_validate({name: value for name, (_, value) in given.items()})
        except ValidationError as error:
            problems = [_problem(detail, given) for detail in error.errors()]
            raise SettingsError("; ".join(problems)) from None

    def updated(self, **overrides: Any) -> MiniscopeSettings:
        """These settings with `overrides` that are not None, validated like the rest."""
        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"not settings: {', '.join(unknown)}")
        given = {name: (name, value) for name, value in self.model_dump().items()}
        given.update({k: (k, v) for k, v in overrides.items() if v is not None})
        return self._validated(given)

    def thresholds(self) -> Thresholds:
        """The QC report's limits, as the lab set them."""
        return Thresholds(
            self.qc_dropped_percent, self.qc_max_motion_px, self.qc_brightness_drift_percent
        )

    def conversion_options(self, **overrides: Any) -> ConversionOptions:
        """The library's options from these defaults, `overrides` (not None) over them."""
        chosen = self.updated(**overrides)
        return ConversionOptions(**{name: getattr(chosen, name) for name in CONVERSION_SETTINGS})


def _environment_values(environ: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """{field: (variable, text)} of the variables set; an unknown MINISCOPE_* one is refused,
    since a misspelt setting would otherwise be silently ignored."""
    known = {SETTINGS_FILE_VARIABLE}
    values: dict[str, tuple[str, Any]] = {}
    for name in MiniscopeSettings.model_fields:
        variables = MiniscopeSettings.variables(name)
        known.update(variables)
        chosen = next((v for v in variables if v in environ), None)
        if chosen is not None:
            values[name] = (chosen, environ[chosen])
    unknown = sorted(v for v in environ if v.startswith(PREFIX) and v not in known)
    if unknown:
        hint = did_you_mean(unknown[0], sorted(known))
        raise SettingsError(f"{unknown[0]}: not a setting{hint}")
    return values


def _file_values(path_text: str | None) -> dict[str, tuple[str, Any]]:
    """{field: ("<file>: <key>", value)} from the settings file, if one is named."""
    if not path_text:
        return {}
    path = Path(path_text).expanduser()
    source = f"{SETTINGS_FILE_VARIABLE}={path_text!r}"
    if path.suffix not in {".toml", ".yaml", ".yml"}:
        raise SettingsError(f"{source}: expected a .yaml, .yml or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(f"{source}: {error.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0]
        raise SettingsError(f"{path}: not valid {path.suffix[1:].upper()}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of setting names to values")
    fields = list(MiniscopeSettings.model_fields)
    for key in data:
        if key not in fields:
            raise SettingsError(f"{path}: {key}: not a setting{did_you_mean(str(key), fields)}")
    return {key: (f"{path}: {key}", value) for key, value in data.items()}


def _problem(detail: ErrorDetails, given: dict[str, tuple[str, Any]]) -> str:
    """`source=value: expected ...` for one field's error."""
    if detail["type"] == _RAW_OUTPUT:
        fields = MiniscopeSettings.model_fields
        raw = given.get("raw_root", ("raw_root", fields["raw_root"].default))
        output = given.get("output_root", ("output_root", fields["output_root"].default))
        where = (detail.get("ctx") or {}).get("where", "is inside")
        return f"{output[0]}={str(output[1])!r} {where} {raw[0]}={str(raw[1])!r}: {_RAW_ONLY_READ}"
    name = str(detail["loc"][0])
    source, value = given.get(name, (name, detail["input"]))
    if detail["type"] == _OWN_MESSAGE:
        return f"{source}={value!r}: {detail['msg']}"
    extra = MiniscopeSettings.model_fields[name].json_schema_extra
    expected = extra["expected"] if isinstance(extra, dict) else detail["msg"]
    return f"{source}={value!r}: expected {expected}"
