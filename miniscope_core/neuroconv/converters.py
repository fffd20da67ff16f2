"""NeuroConv's converters: `ConverterPipe` of ready interfaces, and `MiniscopeConverter` of a
whole session folder. Both come down to one `convert_session` of one `Session`."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..collection.discovery import discover
from ..daq.model import Session
from ..errors import MiniscopeFormatError, MiniscopeWarning
from ..metadata.schema import MetadataError
from ..nwb.naming import Naming
from ..options import STUB_FRAMES, ConversionOptions
from ..pipeline.convert import ConversionResult
from ..timing.recordings import Recording
from ._base import CONVERSION_OPTIONS, BaseInterface
from ._metadata import SOURCE, ScopeEntry, dict_metadata, list_metadata, translate
from ._sources import Part, combined_session
from ._timing import file_alignment, recordings
from ._write import write
from .errors import NeuroConvUnsupported

DEFAULT_SERIES = "OnePhotonSeries"  # NeuroConv's name for an interface's series


@dataclass(frozen=True)
class _Run:
    """One run_conversion's choices, checked before anything is read."""

    output: Path
    stub: bool
    backend: str
    indexes: dict[str, int]


def _refuse_unsupported(
    nwbfile: Any, backend_configuration: Any, append_on_disk_nwbfile: bool
) -> None:
    if nwbfile is not None:
        raise NeuroConvUnsupported(
            "nwbfile= (an in-memory NWBFile)", "give nwbfile_path only; the library writes it"
        )
    if backend_configuration is not None:
        raise NeuroConvUnsupported(
            "backend_configuration",
            "the library chooses chunks and filters; ConversionOptions(compression_level=...)",
        )
    if append_on_disk_nwbfile:
        raise NeuroConvUnsupported(
            "append_on_disk_nwbfile", "write a new file (overwrite=True replaces one)"
        )


def _output(nwbfile_path: Path | str | None) -> Path:
    if nwbfile_path is None:
        raise NeuroConvUnsupported("run_conversion without nwbfile_path", "give nwbfile_path")
    return Path(nwbfile_path)


def _backend(backend: str | None) -> str:
    if backend not in (None, "hdf5", "zarr"):
        raise ValueError(f"backend must be 'hdf5' or 'zarr', not {backend!r}")
    return backend or "hdf5"


def _checked_options(name: str, given: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    for key, value in given.items():
        spec = allowed.get(key)
        if spec is None:
            raise NeuroConvUnsupported(
                f"conversion option {key!r} of {name}", f"the options are {sorted(allowed)}"
            )
        if "enum" in spec and value not in spec["enum"]:
            raise NeuroConvUnsupported(
                f"{name}: {key}={value!r}", f"{key} can only be {spec['enum']}"
            )


class ConverterPipe:
    """Ready interfaces (a dict of names, or a list named by class) into one file."""

    def __init__(
        self,
        data_interfaces: Mapping[str, BaseInterface] | Sequence[BaseInterface],
        verbose: bool = False,
    ) -> None:
        self.verbose = verbose
        self.conversion_result: ConversionResult | None = None
        if isinstance(data_interfaces, Mapping):
            self.data_interface_objects = dict(data_interfaces)
        else:
            totals = Counter(type(i).__name__ for i in data_interfaces)
            seen: Counter[str] = Counter()
            self.data_interface_objects = {}
            for interface in data_interfaces:
                name = type(interface).__name__
                seen[name] += 1
                self.data_interface_objects[
                    name + (f"{seen[name]:03}" if totals[name] > 1 else "")
                ] = interface
        for name, interface in self.data_interface_objects.items():
            if not isinstance(interface, BaseInterface):
                raise NeuroConvUnsupported(
                    f"interface {name} ({type(interface).__name__})",
                    "only miniscope_core.neuroconv's interfaces can be combined",
                )

    # ------------------------------------------------------------ what the file will hold

    def _parts(self) -> list[Part]:
        return [replace(i._part, key=k) for k, i in self.data_interface_objects.items()]

    def _session(self) -> Session:
        return combined_session(self._parts())

    def _scopes(self) -> list[ScopeEntry]:
        return [e for k, i in self.data_interface_objects.items() for e in i.scope_entries(k)]

    def _default_series(self, scopes: Sequence[ScopeEntry]) -> list[str]:
        return [DEFAULT_SERIES for _ in scopes]

    def get_metadata(self, *, use_new_metadata_format: bool = False) -> dict[str, Any]:
        """NeuroConv's list shape (Ophys.Device, ImagingPlane, OnePhotonSeries), or 0.10's dict
        shape; the start is the DAQ's, to the millisecond, without zone (as NeuroConv's)."""
        shape = dict_metadata if use_new_metadata_format else list_metadata
        scopes = self._scopes()
        return shape(self._session(), scopes, self._default_series(scopes))

    def get_conversion_options_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: interface.get_conversion_options_schema()
                for name, interface in self.data_interface_objects.items()
            },
        }

    def _run(self, output: Path, backend: str, conversion_options: Mapping[str, Any]) -> _Run:
        options = dict(conversion_options or {})
        for name in options:
            if name not in self.data_interface_objects:
                raise NeuroConvUnsupported(
                    f"conversion_options for {name!r}",
                    f"the interfaces are {list(self.data_interface_objects)}",
                )
        stubs = set()
        indexes = {}
        for name, interface in self.data_interface_objects.items():
            given = dict(options.get(name) or {})
            _checked_options(name, given, interface.options)
            stubs.add(bool(given.get("stub_test", False)))
            indexes[name] = int(given.get("photon_series_index", 0))
        if len(stubs) > 1:
            raise NeuroConvUnsupported(
                "stub_test on some interfaces only", "stub all of them or none (one stub file)"
            )
        return _Run(output, stubs == {True}, backend, indexes)

    def run_conversion(
        self,
        nwbfile_path: Path | str | None = None,
        nwbfile: Any = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        backend: str | None = None,
        backend_configuration: Any = None,
        conversion_options: Mapping[str, Any] | None = None,
        append_on_disk_nwbfile: bool = False,
    ) -> None:
        """Write every interface into `nwbfile_path` (never replacing a file unless `overwrite`);
        None, as NeuroConv's, the library's `ConversionResult` kept as `conversion_result`."""
        _refuse_unsupported(nwbfile, backend_configuration, append_on_disk_nwbfile)
        run = self._run(_output(nwbfile_path), _backend(backend), conversion_options or {})
        session = self._session()
        scopes = self._scopes()
        given = self.get_metadata() if metadata is None else metadata
        translated = translate(given, session, scopes, self._default_series(scopes), run.indexes)
        _refuse_shared_names(translated.series)
        interfaces = self.data_interface_objects
        alignment = file_alignment(
            session,
            {k: i._alignment for k, i in interfaces.items()},
            {k: i.devices for k, i in interfaces.items()},
            source="set_aligned_starting_time/set_aligned_timestamps",
        )
        _warn_unaligned(session, {k: i._alignment for k, i in interfaces.items()}, self._parts())
        options = ConversionOptions(
            per_acquisition=len(session.acquisitions) > 1,
            stub=run.stub,
            backend=run.backend,
            alignment=alignment,
            embed_cameras=any(i.embed_cameras for i in interfaces.values()),
        )
        owners = {id(d): k for k, i in interfaces.items() for d in i.devices}

        def names(recs: list[Recording]) -> dict[str, str]:
            written = _library_names(recs, options)
            return {
                written[id(r)]: translated.series[owners[id(r.device)]]
                for r in recs
                if id(r) in written and owners.get(id(r.device)) in translated.series
            }

        self.conversion_result = write(
            session, run.output, options, translated.overrides, names, overwrite
        )


def _library_names(recs: Sequence[Recording], options: ConversionOptions) -> dict[int, str]:
    """The series name the library gives each scope recording (see `nwb.naming`)."""
    naming = Naming(options.neuroconv_names, options.per_acquisition)
    names = {}
    for recording in recs:
        if recording.device.kind == "miniscope" and recording.n_frames:
            name = naming.scope_series(recording, naming.device(recording))
            if options.per_acquisition:
                name += naming.acquisition_suffix(recording)
            names[id(recording)] = name
    return names


def _refuse_shared_names(series: Mapping[str, str]) -> None:
    counts = Counter(series.values())
    for name, count in counts.items():
        if count > 1:
            users = [k for k, v in series.items() if v == name]
            raise MetadataError(
                SOURCE,
                f"{', '.join(users)} would all write the series {name!r}: give each its own "
                "Ophys.OnePhotonSeries entry and choose it with conversion_options="
                "{name: {'photon_series_index': i}}",
            )


def _warn_unaligned(session: Session, alignments: Mapping[str, Any], parts: Sequence[Part]) -> None:
    """NeuroConv would start an unaligned later acquisition at 0 s; the library keeps its gap."""
    if len(session.acquisitions) < 2:
        return
    first = session.acquisitions[0]
    for part in parts:
        start = part.acquisition.start
        if start is None or first.start is None or start.epoch_ms == first.start.epoch_ms:
            continue
        if not alignments[part.key].is_set:
            gap = (start.epoch_ms - first.start.epoch_ms) / 1000
            warnings.warn(
                f"{part.key}: no set_aligned_starting_time, so its times keep the recorded "
                f"gap ({gap:g} s after the first acquisition's start), where NeuroConv would "
                "start them at 0 s",
                MiniscopeWarning,
                stacklevel=3,
            )


class MiniscopeConverter:
    """A whole DAQ session folder: NeuroConv's folder discovery (every acquisition in one
    series per device, the recorded gaps kept) or, with `user_configuration_file_path`, its
    User-Config mode (one series per device and acquisition); NeuroConv's names in both."""

    def __init__(
        self,
        folder_path: Path | str,
        user_configuration_file_path: Path | str | None = None,
        verbose: bool = False,
    ) -> None:
        self.verbose = verbose
        self.conversion_result: ConversionResult | None = None
        root = Path(folder_path)
        if user_configuration_file_path is not None:
            root = _configured_root(root, Path(user_configuration_file_path))
        self._session = discover(root)
        self._options = ConversionOptions(
            neuroconv_names=True, per_acquisition=user_configuration_file_path is not None
        )

    def _scopes_and_names(self) -> tuple[list[ScopeEntry], list[str]]:
        naming = Naming(True, self._options.per_acquisition)
        recs = recordings(self._session)  # one list: names are keyed by id(recording)
        names = _library_names(recs, self._options)
        scopes: list[ScopeEntry] = []
        series: list[str] = []
        for recording in recs:
            if id(recording) not in names:
                continue
            device = recording.device
            key = f"{recording.acquisition.label}/{device.folder.name}"
            entry = ScopeEntry(key, key, device, naming.device(recording), None)
            if (
                any(s.device_name == entry.device_name for s in scopes)
                and not self._options.per_acquisition
            ):
                continue
            scopes.append(entry)
            series.append(names[id(recording)])
        return scopes, series

    def get_metadata(self, *, use_new_metadata_format: bool = False) -> dict[str, Any]:
        scopes, series = self._scopes_and_names()
        shape = dict_metadata if use_new_metadata_format else list_metadata
        return shape(self._session, scopes, series)

    def get_conversion_options_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": dict(CONVERSION_OPTIONS),
        }

    def run_conversion(
        self,
        nwbfile_path: Path | str | None = None,
        nwbfile: Any = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        backend: str | None = None,
        backend_configuration: Any = None,
        conversion_options: Mapping[str, Any] | None = None,
        append_on_disk_nwbfile: bool = False,
        stub_test: bool = False,
        stub_samples: int = STUB_FRAMES,
    ) -> None:
        """Write the session into `nwbfile_path`; the result is kept as `conversion_result`."""
        _refuse_unsupported(nwbfile, backend_configuration, append_on_disk_nwbfile)
        if conversion_options:
            raise NeuroConvUnsupported(
                "per-interface conversion_options of MiniscopeConverter",
                "stub_test=True applies to the whole session",
            )
        _checked_options("MiniscopeConverter", {"stub_samples": stub_samples}, CONVERSION_OPTIONS)
        scopes, series = self._scopes_and_names()
        given = self.get_metadata() if metadata is None else metadata
        indexes = {s.key: i for i, s in enumerate(scopes)}
        translated = translate(given, self._session, scopes, series, indexes)
        renamed = {old: translated.series[s.key] for s, old in zip(scopes, series, strict=True)}
        options = replace(self._options, stub=stub_test, backend=_backend(backend))
        self.conversion_result = write(
            self._session, _output(nwbfile_path), options, translated.overrides,
            lambda _recordings: renamed, overwrite,
        )  # fmt: skip


def _configured_root(folder: Path, config_path: Path) -> Path:
    """NeuroConv's User-Config mode: the folder its `directoryStructure` fixes (the entries that
    are keys of the config, e.g. researcher, experiment, animal), below `folder`."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MiniscopeFormatError(config_path, f"cannot be read as JSON ({error})") from error
    structure = config.get("directoryStructure") if isinstance(config, dict) else None
    if not isinstance(structure, list):
        raise MiniscopeFormatError(config_path, "has no directoryStructure list")
    fixed = [str(config[key]).replace(" ", "_") for key in structure if key in config]
    root = folder.joinpath(*fixed)
    if not root.is_dir():
        raise MiniscopeFormatError(
            root, "is missing (the folder UserConfigFile.json's directoryStructure fixes)"
        )
    return root
