"""Read a written NWB file back and check that every image series reads as what was written.

pynwb's schema validation passes files whose pixel datasets are unreadable (a chunk of the wrong
size crashed h5py's reader with a segmentation fault), so the check looks at the bytes itself:
every chunk is stored, the first and last chunks inflate to whole frames of the dataset's shape
and equal what the writer stored, and frames and timestamps agree in number. Raw chunks
are inflated here before HDF5 ever decodes them, so a corrupt file fails the check instead of
crashing the process that checks it. NWB Zarr stores (directories, `zarr_output`) get the same
checks through their chunk keys.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pynwb
from nwbinspector import Importance, InspectorMessage, inspect_nwbfile, load_config

from ..errors import MiniscopeFormatError
from ..nwb.backends.base import WrittenSeries, inflate_problems
from ..nwb.backends.support import is_zarr_store, require_zarr


@dataclass(frozen=True)
class Verification:
    """Problems found reading the file back (none: it reads as written)."""

    path: Path
    series: int
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


class VerificationError(MiniscopeFormatError):
    """The file just written does not read back as written; it is not kept."""

    def __init__(self, output: Path, problems: tuple[str, ...]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(
            output,
            f"did not read back as written, so it was not kept: {problems[0]}{more}; "
            "please report this with the output of `miniscope-nwb inspect SESSION`",
        )


def verify_nwb(path: Path, written: list[WrittenSeries] | None = None) -> Verification:
    """Check every image series of `path`, and against `written` when the writer's record is known.

    Without `written` (a file from elsewhere), each series is checked on its own: one chunk per
    frame, boundary frames that inflate to the dataset's frame shape, timestamps per frame.
    """
    expected = {series.path: series for series in written or []}
    problems: list[str] = []
    with open_nwb_root(path) as root:
        found = list(_image_series(root))
        for name in expected.keys() - {group.name.lstrip("/") for group in found}:
            problems.append(f"{name}: missing from the file")
        for group in found:
            problems += _check_series(group, expected.get(group.name.lstrip("/")))
    return Verification(path, len(found), tuple(problems))


@contextmanager
def open_nwb_root(path: Path) -> Iterator[Any]:
    """The root group of an NWB file (h5py) or NWB Zarr store (zarr), read only."""
    if not is_zarr_store(path):
        with h5py.File(path, "r") as h5:
            yield h5
        return
    require_zarr(path)
    from ..nwb.backends.zarr import open_root

    yield open_root(path)


def _image_series(root: Any) -> Iterator[Any]:
    """Every group whose neurodata type is an ImageSeries or a subtype with pixels or files."""
    groups: list[Any] = []

    def visit(_name: str, item: Any) -> None:
        if isinstance(item, Mapping) and "data" in item and _is_image_series(item):
            groups.append(item)

    root.visititems(visit)
    return iter(groups)


def _is_image_series(group: h5py.Group) -> bool:
    kind = group.attrs.get("neurodata_type", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    return kind in {"ImageSeries", "OnePhotonSeries", "TwoPhotonSeries"}


def _check_series(group: h5py.Group, written: WrittenSeries | None) -> list[str]:
    name = group.name.lstrip("/")
    data = group["data"]
    linked = "external_file" in group
    frames = (written.n_frames if written else None) if linked else data.shape[0]
    problems = _timestamp_problems(group, frames)
    if linked:
        problems += _link_problems(group)
    elif written is not None and len(written.frame_shapes) > 1:
        problems.append(f"frames of sizes {' and '.join(map(str, written.frame_shapes))} written")
    elif written is not None and data.shape != (written.n_frames, *written.frame_shapes[0]):
        shape = (written.n_frames, *written.frame_shapes[0])
        problems.append(f"data shape {data.shape}, {shape} was written")
    elif data.dtype != np.uint8:
        problems.append(f"data type {data.dtype}, uint8 expected")
    elif isinstance(data, h5py.Dataset):
        problems += _chunk_problems(data, written)
    else:
        from ..nwb.backends.zarr import chunk_problems

        problems += chunk_problems(data, written)
    return [f"{name}: {problem}" for problem in problems]


def _timestamp_problems(group: h5py.Group, frames: int | None) -> list[str]:
    if "timestamps" not in group:
        return []
    values = group["timestamps"][:]
    problems = []
    if frames is not None and len(values) != frames:
        problems.append(f"{len(values)} timestamps for {frames} frames")
    if not np.all(np.isfinite(values)):
        problems.append("timestamps that are not finite numbers")
    elif np.any(np.diff(values) < 0):
        problems.append("timestamps that go back in time")
    return problems


def _link_problems(group: h5py.Group) -> list[str]:
    """A linked video series: one starting frame per file, from 0, increasing."""
    files = group["external_file"]
    starts = np.asarray(files.attrs.get("starting_frame", []))
    if len(starts) != files.shape[0]:
        return [f"{len(starts)} starting frames for {files.shape[0]} linked files"]
    if len(starts) and (starts[0] != 0 or np.any(np.diff(starts) <= 0)):
        return [f"starting frames {starts.tolist()} do not start at 0 and increase"]
    return []


def _chunk_problems(data: h5py.Dataset, written: WrittenSeries | None) -> list[str]:
    """Whole frames per chunk, every chunk stored; the first and last chunks inflate to whole
    frames and equal what was written."""
    n_frames = data.shape[0]
    if data.chunks is None or tuple(data.chunks[1:]) != tuple(data.shape[1:]):
        return [f"chunks {data.chunks}, whole frames per chunk expected"]
    per_chunk = data.chunks[0]
    stored, expected = data.id.get_num_chunks(), math.ceil(n_frames / per_chunk)
    if stored != expected:
        return [f"{stored} of {expected} chunks have data (the others would read as zeros)"]
    problems = []
    for row in sorted({0, (n_frames - 1) // per_chunk * per_chunk} if n_frames else set()):
        problems += _frame_problems(data, row, written.chunks.get(row) if written else None)
    return problems


def _frame_problems(data: h5py.Dataset, row: int, written: bytes | None) -> list[str]:
    zeros = (0,) * (data.ndim - 1)
    mask, chunk = data.id.read_direct_chunk((row, *zeros))
    if written is not None and chunk != written:
        return [f"frame {row} differs from what was written"]
    if mask or not _plain_deflate(data):
        return []  # filters of another writer: leave decoding to HDF5
    return inflate_problems(chunk, data.compression == "gzip", data, row, "HDF5")


def _plain_deflate(data: h5py.Dataset) -> bool:
    """Chunks that are deflate streams of the frame (or the frame itself), nothing else."""
    filters = set(data._filters) - {"gzip"}  # h5py lists filters only here
    return data.compression in (None, "gzip") and not filters


# How `dandi validate` reads nwbinspector's importance levels (dandi.files.bases): ERROR,
# PYNWB_VALIDATION and CRITICAL (with DANDI's configuration) fail a file, BEST_PRACTICE_VIOLATION
# is a warning; it asks for nothing below that (a suggestion is shown here all the same).
DANDI_ERRORS = frozenset({Importance.ERROR, Importance.PYNWB_VALIDATION, Importance.CRITICAL})
DANDI_SEVERITY = {Importance.BEST_PRACTICE_VIOLATION: "warning",
                  Importance.BEST_PRACTICE_SUGGESTION: "not reported"}  # fmt: skip


@dataclass(frozen=True)
class FileCheck:
    """Everything known about one NWB file: schema, DANDI's best practices, and the read-back.

    The verdict is DANDI's gate (pynwb's schema, nwbinspector with DANDI's configuration and
    importance levels) plus the read-back of the pixels, which DANDI does not do; what DANDI
    only warns about, or does not report, is kept apart (`warnings`) and never fails the file.
    """

    path: Path
    schema_errors: tuple[str, ...]
    critical: tuple[str, ...]  # nwbinspector findings that DANDI counts as errors
    warnings: tuple[str, ...]  # the others, each with what DANDI makes of it
    findings: dict[str, int]  # nwbinspector findings by importance
    readback: Verification

    @property
    def problems(self) -> tuple[str, ...]:
        return self.schema_errors + self.critical + self.readback.problems

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(self.findings.items())) or "none"
        return f"{self.readback.series} image series read back; nwbinspector findings: {found}"


def check_file(path: Path | str) -> FileCheck:
    """pynwb validation, nwbinspector as DANDI runs it, and the read-back of every image series
    of `path` (an NWB file, or an NWB Zarr store)."""
    path = Path(path)
    if not path.is_file() and not is_zarr_store(path):
        raise MiniscopeFormatError(path, "is not a file (nor an NWB Zarr directory)")
    try:
        readback = verify_nwb(path)
    except OSError as error:
        raise MiniscopeFormatError(path, f"is not a readable HDF5 file ({error})") from error
    if is_zarr_store(path):  # pynwb.validate(path=) fails on a store with hdmf-zarr 0.13
        from ..nwb.backends.zarr import schema_errors

        errors = schema_errors(path)
    else:
        errors = pynwb.validate(path=str(path))
    messages = list(inspect_nwbfile(nwbfile_path=str(path), skip_validate=True,
                                    config=load_config(filepath_or_keyword="dandi")))  # fmt: skip
    critical = tuple(_line(m) for m in messages if m.importance in DANDI_ERRORS)
    warned = tuple(
        f"{m.importance.name} (DANDI: {DANDI_SEVERITY[m.importance]}) {_line(m)}"
        for m in messages
        if m.importance not in DANDI_ERRORS
    )
    findings = dict(Counter(m.importance.name for m in messages))
    return FileCheck(path, tuple(str(e) for e in errors), critical, warned, findings, readback)


def _line(message: InspectorMessage) -> str:
    where = f" at {message.location}" if message.location not in (None, "/") else ""
    return f"{message.check_function_name}{where}: {message.message}"


def file_provenance(path: Path) -> dict[str, Any] | None:
    """What made the NWB file at `path` (the `source_script` record this tool writes: its
    version, the libraries', the options, the metadata files); None for a file it did not write
    or cannot read."""
    try:
        with open_nwb_root(Path(path)) as root:
            text = root["general"]["source_script"][()]
    except (OSError, KeyError, ValueError):
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        record = json.loads(str(text))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
