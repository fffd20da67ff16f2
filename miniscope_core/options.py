"""How to convert: `ConversionOptions`, the one declaration of each choice, its default and help.

Every front end is derived from the fields below: the flags of `miniscope-nwb convert` and of
`miniscope-dagster backfill` (`add_option_flags`), and, for the choices a lab may set as its
default (`lab`), the deployment's settings and the Dagster run config, which take their
defaults and descriptions from here (`OPTIONS`); a test holds them to it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .encode.deflate import DEFAULT_ENGINE, DEFAULT_LEVEL, ENGINES, Deflater
from .nwb.backends.support import BACKENDS, DEFAULT_BACKEND
from .nwb.naming import Naming
from .timing.sync import SYNC_COLUMNS, SYNC_FILE, NewTimestamps, TimeAlignment, read_sync_file

STUB_FRAMES = 100  # per device and acquisition: enough to check metadata and layout in seconds
# Frames per chunk of the image series, measured for a remote archive's readers (docs/nwb-layout.md)
FRAMES_PER_CHUNK = 8


@dataclass(frozen=True)
class Option:
    """One conversion choice as every front end shows it."""

    name: str
    default: Any
    help: str  # one sentence: the flag's help, the setting's and the run config's description
    flag: str = ""  # on the command line; "" for none
    parse: Callable[[str], Any] = str  # the flag's text to a value (argparse `type`)
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    negated: bool = False  # a flag that turns a True default off (`--no-verify`)
    lab: bool = False  # a lab may make it its default: a deployment setting and run config
    run_config: bool = False  # in the Dagster run config (every `lab` option is too)
    value: Callable[[Any], Any] | None = None  # the flag's value to the option's (a file read)

    @property
    def is_switch(self) -> bool:
        """Given or not (store_true, or store_false when negated): a bool option."""
        return isinstance(self.default, bool)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text}")
    return value


def _renames(text: str) -> tuple[tuple[str, str], ...]:
    """`OLD=NEW[,OLD=NEW...]` as pairs; a name NWB cannot hold (empty, with `/`) is refused."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        old, sep, new = (side.strip() for side in item.partition("="))
        if not (sep and old and new) or "/" in old + new:
            raise argparse.ArgumentTypeError(f"{item!r} is not OLD=NEW (names without '/')")
        pairs.append((old, new))
    return tuple(pairs)


def _option(default: Any, meaning: str, **how: Any) -> Any:
    """A field of `ConversionOptions` and its front-end declaration (see `Option`)."""
    return field(default=default, metadata={"option": how | {"help": meaning}})


@dataclass(frozen=True)
class ConversionOptions:
    """How to convert; the defaults are what most labs want."""

    per_acquisition: bool = _option(
        False,
        "One image series per acquisition instead of one per device for the whole session.",
        flag="--per-acquisition", lab=True,
    )  # fmt: skip
    strict: bool = _option(
        False,
        "Fail a session whose video frames and timestamps disagree (else keep the shorter), "
        "or that holds recording data the conversion would leave out.",
        flag="--strict", lab=True,
    )  # fmt: skip
    compression_level: int = _option(
        DEFAULT_LEVEL, "Deflate level of the stored frames (isal 0-3, zlib 0-9).",
        flag="--compression-level", parse=int, metavar="N", lab=True,
    )  # fmt: skip
    deflate_engine: str = _option(
        DEFAULT_ENGINE, "Deflate encoder: isal (fast) or zlib (the same bytes as h5py's filter).",
        flag="--deflate-engine", choices=tuple(sorted(ENGINES)), lab=True,
    )  # fmt: skip
    frames_per_chunk: int = _option(
        FRAMES_PER_CHUNK,
        "Frames per chunk of the stored image series (fewer: a viewer's one frame is cheaper; "
        "more: a whole series or one pixel's trace is; see docs/nwb-layout.md).",
        flag="--frames-per-chunk", parse=_positive, metavar="N", lab=True,
    )  # fmt: skip
    embed_cameras: bool = _option(
        False,
        "Store behaviour-camera frames in the NWB file instead of linking the AVI files.",
        flag="--embed-cameras", lab=True,
    )  # fmt: skip
    report: bool = _option(
        True,
        "Write the QC report beside the file (<file>.qc.html): field of view, brightness, "
        "motion, frame times, head orientation, a camera frame, settings, validation "
        "(--no-report skips it, and the statistics gathered while decoding).",
        flag="--no-report", negated=True,
    )  # fmt: skip
    workers: int | None = _option(
        None, "Compression threads (default: all cores; at least one per decoder).",
        flag="--workers", parse=_positive, metavar="N",
    )  # fmt: skip
    verify: bool = _option(
        True, "Read the file back before it takes its name (--no-verify skips it).",
        flag="--no-verify", negated=True,
    )  # fmt: skip
    stub: bool = _option(
        False,
        f"Stub run: only the first {STUB_FRAMES} frames of each device in each acquisition, "
        "into <name>_stub.nwb, to check metadata and layout in seconds.",
        flag="--stub", run_config=True,
    )  # fmt: skip
    alignment: TimeAlignment | NewTimestamps | None = _option(
        None,
        f"Sync pairs to another clock: a CSV of {','.join(SYNC_COLUMNS)} (s); default: the "
        f"session's own {SYNC_FILE}, if any.",
        flag="--sync", parse=Path, metavar="FILE", value=read_sync_file,
    )  # fmt: skip
    start_offset: float = _option(
        0.0, "Seconds added to every time, after the sync pairs.",
        flag="--start-offset", parse=_seconds, metavar="SECONDS",
    )  # fmt: skip
    neuroconv_names: bool = _option(
        False,
        "Name series and devices as NeuroConv's MiniscopeConverter does (`BehavCamImageSeries`).",
        flag="--neuroconv-names", lab=True,
    )  # fmt: skip
    series_names: tuple[tuple[str, str], ...] = _option(
        (),
        "Image series named otherwise: OLD=NEW pairs, comma-separated (OLD as `inspect` or a "
        "first conversion names it); an OLD the file does not have is refused.",
        flag="--rename-series", parse=_renames, metavar="OLD=NEW[,OLD=NEW]",
    )  # fmt: skip
    backend: str = _option(
        DEFAULT_BACKEND,
        "NWB file format: hdf5 (`<name>.nwb`) or zarr (`<name>.nwb.zarr`, needs the zarr extra).",
        flag="--backend", choices=BACKENDS, lab=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        Deflater(self.deflate_engine, self.compression_level)  # a clear ValueError, early
        if self.frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be 1 or more, not {self.frames_per_chunk}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")

    @property
    def deflater(self) -> Deflater:
        return Deflater(self.deflate_engine, self.compression_level)

    @property
    def naming(self) -> Naming:
        return Naming(self.neuroconv_names, self.per_acquisition)


# Where the output goes and under which name: chosen like a conversion option, but not one.
DANDI_LAYOUT = Option(
    "dandi_layout",
    False,
    "Name each file as `dandi organize` does (sub-<id>/sub-<id>_ses-<id>_<modalities>.nwb) "
    "and require DANDI's metadata first.",
    flag="--dandi",
    lab=True,
)
OPTIONS: dict[str, Option] = {
    item.name: Option(item.name, item.default, **item.metadata["option"])
    for item in fields(ConversionOptions)
} | {DANDI_LAYOUT.name: DANDI_LAYOUT}
LAB_OPTIONS = tuple(name for name, option in OPTIONS.items() if option.lab)
RUN_CONFIG_OPTIONS = tuple(name for name, o in OPTIONS.items() if o.lab or o.run_config)


def add_option_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    names: Iterable[str],
    unset: bool = False,
) -> None:
    """The flags of the options `names`, as declared; with `unset`, a flag not given is None
    (the setting in force stays), else its default."""
    for name in names:
        option = OPTIONS[name]
        default = None if unset else option.default
        if option.is_switch:
            action = "store_false" if option.negated else "store_true"
            parser.add_argument(
                option.flag, dest=name, action=action, default=default, help=option.help
            )
        else:
            parser.add_argument(
                option.flag, dest=name, type=option.parse, choices=option.choices or None,
                metavar=option.metavar, default=default, help=option.help,
            )  # fmt: skip


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The values of `names` the flags gave (None: not given), files read (`--sync`)."""
    given = {}
    for name in names:
        value, read = getattr(args, name), OPTIONS[name].value
        given[name] = read(value) if read is not None and value is not None else value
    return given
