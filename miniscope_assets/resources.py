"""Where sessions are read and outputs written, the knobs of the automation, and run config.

Every value and its default is defined once, in `miniscope_assets.settings`: the resource is
built from the settings (environment variables, settings file) when the code location loads, so
the UI shows the values in use and a bad one stops the load with a one-line message. The
conversion defaults can be changed per run through `ConversionConfig`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import dagster as dg
from pydantic import Field, ValidationError

from miniscope_core import (
    BACKENDS,
    OPTIONS,
    ConversionOptions,
    Session,
    Thresholds,
    claim_output,
    claimed_outputs,
    converter,
    dandi_output,
    file_provenance,
    for_backend,
    resolve_metadata,
    stub_output,
    write_json,
)

from .scan import session_folder
from .settings import CONVERSION_SETTINGS, MiniscopeSettings, SettingsError

CHOICES_FILE = "choices.json"  # under a session's output folder: the choices that stick
# Under the output root (a key never starts with "."): what the session sensor keeps between ticks.
SENSOR_STATE_FILE = ".miniscope/session_sensor.json"
OVERVIEW_FILE = "index.html"  # the lab overview, in the output root
CONVERTER = converter()  # "miniscope-nwb <version>"

_DEFAULTS = MiniscopeSettings()
_PATHS = {"raw_root", "output_root", "metadata_file"}


def _text(path: Path | None) -> str:
    """Dagster config holds paths as text; no path is the empty text."""
    return "" if path is None else str(path)


class MiniscopeStorage(dg.ConfigurableResource):
    """Raw root (read only), output root, and how sessions are converted and watched."""

    raw_root: str = _text(_DEFAULTS.raw_root)
    output_root: str = _text(_DEFAULTS.output_root)
    reports_url: str = _DEFAULTS.reports_url or ""
    metadata_file: str = _text(_DEFAULTS.metadata_file)
    keep_chunks: bool = _DEFAULTS.keep_chunks
    settle_seconds: float = _DEFAULTS.settle_seconds
    stale_seconds: float = _DEFAULTS.stale_seconds
    max_new_per_tick: int = _DEFAULTS.max_new_per_tick
    qc_dropped_percent: float = _DEFAULTS.qc_dropped_percent
    qc_max_motion_px: float = _DEFAULTS.qc_max_motion_px
    qc_brightness_drift_percent: float = _DEFAULTS.qc_brightness_drift_percent
    per_acquisition: bool = _DEFAULTS.per_acquisition
    strict: bool = _DEFAULTS.strict
    embed_cameras: bool = _DEFAULTS.embed_cameras
    neuroconv_names: bool = _DEFAULTS.neuroconv_names
    dandi_layout: bool = _DEFAULTS.dandi_layout
    deflate_engine: str = _DEFAULTS.deflate_engine
    compression_level: int = _DEFAULTS.compression_level
    frames_per_chunk: int = _DEFAULTS.frames_per_chunk
    backend: str = _DEFAULTS.backend

    @classmethod
    def from_settings(cls, settings: MiniscopeSettings) -> MiniscopeStorage:
        """The resource's share of `settings` (paths as text); the sensor interval is not part
        of it, since it is fixed when the sensor is defined."""
        values: dict[str, Any] = settings.model_dump(include=set(cls.model_fields))
        values.update({name: _text(values[name]) for name in _PATHS})
        values.update({name: "" for name, value in values.items() if value is None})
        return cls(**values)

    @classmethod
    def from_env(cls, **overrides: Any) -> MiniscopeStorage:
        """Settings file < MINISCOPE_* variables < `overrides` that are not None.

        Raises SettingsError naming the variable (or file and key) and the bad value."""
        return cls.from_settings(MiniscopeSettings.load(**overrides))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Before a step writes anything: the values checked as the settings are (an output
        root inside the raw root is refused, also for a resource built by hand or in a run's
        resource config), with the same one-line message."""
        self._checked()

    def _checked(self) -> MiniscopeSettings:
        """These values as the settings model, checked (a resource may be built by hand)."""
        return _DEFAULTS.updated(**self.model_dump(include=set(type(self).model_fields)))

    @property
    def raw_path(self) -> Path:
        return Path(self.raw_root).expanduser()

    def session_folder(self, key: str) -> Path:
        return session_folder(self.raw_path, key)

    def rel_path(self, folder: Path) -> PurePosixPath:
        path, raw = Path(os.path.abspath(folder)), self.raw_path
        for root in (raw.resolve(), Path(os.path.abspath(raw))):  # the folder as listed
            if path.is_relative_to(root):
                return PurePosixPath(path.relative_to(root).as_posix())
        return PurePosixPath(folder.resolve().relative_to(raw.resolve()).as_posix())

    def session_dir(self, key: str) -> Path:
        """Everything written for one session: `<output_root>/<key>/`."""
        return Path(self.output_root).expanduser() / key

    def link(self, path: Path) -> str:
        """The URL Dagster shows for a file written under the output root: `reports_url` and
        its path below the root (URL-quoted) when that is set, so it opens from the UI over
        http; else (or outside the root) its file:// URL, beside the `path` value as ever."""
        served = self._checked().reports_url
        root = Path(self.output_root).expanduser()
        if served:
            for absolute, top in (
                (Path(os.path.abspath(path)), Path(os.path.abspath(root))),  # as written
                (path.resolve(), root.resolve()),  # through links
            ):
                if absolute.is_relative_to(top):
                    return served + quote(absolute.relative_to(top).as_posix())
        return path.resolve().as_uri()

    @property
    def sensor_state_path(self) -> Path:
        return Path(self.output_root).expanduser() / SENSOR_STATE_FILE

    @property
    def overview_path(self) -> Path:
        return Path(self.output_root).expanduser() / OVERVIEW_FILE

    def nwb_path(self, key: str, backend: str | None = None) -> Path:
        """`<key>.nwb`, or `<key>.nwb.zarr` for the zarr backend (default: the setting's)."""
        return for_backend(self.session_dir(key) / f"{key}.nwb", backend or self.backend)

    @property
    def dandiset_dir(self) -> Path:
        """Where the DANDI layout puts every session's file (`sub-<id>/...`)."""
        return Path(self.output_root).expanduser() / "dandiset"

    @property
    def claims_dir(self) -> Path:
        """Which session wrote each dandiset file (see `claim_output`)."""
        return Path(self.output_root).expanduser() / "dandiset_claims"

    def converted(self) -> dict[str, Path]:
        """{key: its NWB file} of the sessions converted in the layout of the settings."""
        if self.dandi_layout:
            return {k: p for k, p in claimed_outputs(self.claims_dir).items() if p.exists()}
        root = Path(self.output_root).expanduser()
        outputs = root.glob("*/*.nwb*")  # a file, or a Zarr store (directory)
        return {p.parent.name: p for p in outputs if p.name in _names(p.parent.name)}

    def dandi_layout_for(self, config: ConversionConfig | None) -> bool:
        """The run's choice, else the setting."""
        chosen = config.dandi_layout if config else None
        return self.dandi_layout if chosen is None else chosen

    def output_path(
        self, key: str, session: Session, metadata: dict[str, Any], config: ConversionConfig
    ) -> Path:
        """`<session dir>/<key>.nwb`, or in the DANDI layout `dandi organize`'s name (either
        `.nwb.zarr` for Zarr); a stub run's file beside it, never in its place."""
        options = self.options(config)
        path = self.nwb_path(key, options.backend)
        if self.dandi_layout_for(config):
            path = dandi_output(session, self.dandiset_dir, metadata, options)
            path = for_backend(path, options.backend)
            claim_output(path, key, self.claims_dir)
        return stub_output(path) if options.stub else path

    def chunks_dir(self, key: str) -> Path:
        return self.session_dir(key) / "chunks"

    def previews_dir(self, key: str) -> Path:
        return self.session_dir(key) / "previews"

    def thresholds(self) -> Thresholds:
        return self._checked().thresholds()

    def options(self, config: ConversionConfig | None = None) -> ConversionOptions:
        """The settings' conversion defaults with the run's choices over them."""
        options = self._checked().conversion_options(**(config.choices() if config else {}))
        return replace(options, stub=bool(config and config.stub))

    def recorded_choices(self, key: str) -> dict[str, Any]:
        """The choices a run made for this session (`choices.json`): later runs keep them, so
        its file's layout changes only when someone decides it, never by a sensor run."""
        path = self.session_dir(key) / CHOICES_FILE
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise SettingsError(f"{path}: cannot be read as JSON ({error})") from None
        if not isinstance(recorded, dict):
            raise SettingsError(f"{path}: not a session's conversion choices (not a JSON object)")
        unknown = set(recorded) - set(ConversionConfig.model_fields) - {"stub", "metadata"}
        if unknown:
            raise SettingsError(f"{path}: not a session's conversion choices ({sorted(unknown)})")
        return recorded

    def session_config(self, key: str, config: ConversionConfig) -> ConversionConfig:
        """The run's choices over the session's recorded ones (see `recorded_choices`)."""
        recorded = self.recorded_choices(key)
        try:
            ConversionConfig(**recorded)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            path = self.session_dir(key) / CHOICES_FILE
            raise SettingsError(f"{path}: {where}: {problem['msg']}") from None
        chosen = {**recorded, **config.choices()}
        return ConversionConfig(**chosen, stub=config.stub, metadata=config.metadata)

    def record_choices(self, key: str, config: ConversionConfig) -> None:
        """Keep the choices of a run that made this session's file (a stub's are not kept)."""
        if config.choices() and not config.stub:
            write_json(self.session_dir(key) / CHOICES_FILE, config.choices())

    def differences_from_lab(self, options: ConversionOptions) -> dict[str, Any]:
        """{option: value} where `options` are not the lab's (the settings')."""
        lab = self.options()
        return {
            name: getattr(options, name)
            for name in CONVERSION_SETTINGS
            if getattr(options, name) != getattr(lab, name)
        }

    def stale_reason(self, key: str, path: Path) -> str | None:
        """Why the session's file is not what converting it now would write (an older
        converter, other options than the lab's and the session's recorded ones), or None."""
        made = file_provenance(path)
        if made is None:
            return "no record of what made it (not written by miniscope-nwb?)"
        tool, version = CONVERTER.split(" ", 1)
        made_by = made.get("versions", {}).get(tool)
        if made_by != version:
            return f"made by {tool} {made_by} (now {version})"
        now = self.options(self.session_config(key, ConversionConfig()))
        written = made.get("options", {})
        changed = [
            f"{name}={written.get(name)!r} (now {getattr(now, name)!r})"
            for name in CONVERSION_SETTINGS
            if written.get(name) != getattr(now, name)
        ]
        return "made with " + ", ".join(changed) if changed else None

    @property
    def lab_metadata(self) -> Path | None:
        """The lab-wide metadata file, if set."""
        return Path(self.metadata_file).expanduser() if self.metadata_file else None

    def nwb_metadata(
        self, session: Session, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The library's one policy: what the recording says < the lab-wide file < the
        session's own nwb_metadata.yaml < `overrides` (run config); validated, so a bad file
        fails the first asset."""
        return resolve_metadata(session, lab_file=self.lab_metadata, overrides=overrides or None)


def _names(key: str) -> set[str]:
    """The names a session's output has in its own folder, one per backend."""
    return {for_backend(Path(f"{key}.nwb"), backend).name for backend in BACKENDS}


def _unset_means(name: str) -> Any:
    """A run config field that, left unset, takes the code location's setting `name`."""
    variable = MiniscopeSettings.variables(name)[0]
    meaning = MiniscopeSettings.model_fields[name].description
    return Field(None, description=f"{meaning} Unset: ${variable} of the code location.")


class ConversionConfig(dg.Config):
    """The run's conversion choices, the same for every asset that reads them (see
    `conversion_run_config`); a field left unset takes the code location's setting."""

    per_acquisition: bool | None = _unset_means("per_acquisition")
    strict: bool | None = _unset_means("strict")
    embed_cameras: bool | None = _unset_means("embed_cameras")
    neuroconv_names: bool | None = _unset_means("neuroconv_names")
    dandi_layout: bool | None = _unset_means("dandi_layout")
    deflate_engine: str | None = _unset_means("deflate_engine")
    compression_level: int | None = _unset_means("compression_level")
    frames_per_chunk: int | None = _unset_means("frames_per_chunk")
    stub: bool = Field(default=OPTIONS["stub"].default, description=OPTIONS["stub"].help)
    backend: str | None = _unset_means("backend")
    metadata: dict[str, Any] = Field(
        default={},
        description="NWB metadata merged over every file (NWBFile, Subject, Ophys sections).",
    )

    def choices(self) -> dict[str, Any]:
        """The conversion settings this run sets (not the unset ones)."""
        chosen = {name: getattr(self, name) for name in (*CONVERSION_SETTINGS, "dandi_layout")}
        return {name: value for name, value in chosen.items() if value is not None}
