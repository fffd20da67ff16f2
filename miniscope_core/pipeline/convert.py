"""The conversion as stages: discover -> encode videos into chunk files -> assemble the NWB file.

The Dagster assets materialise these stages one by one; `convert_session` runs them in one
process. Chunk files live in a work folder keyed by each video's path inside the session, and a
chunk file whose source video has not changed is reused, so re-converting a session that gained
an acquisition decodes only the new videos.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py

from ..collection.discovery import discover
from ..daq.model import Device, Session
from ..daq.video import VideoInfo
from ..encode.chunks import ChunkFile, encode_into, encode_video, probe_video, read_chunk_file
from ..errors import MiniscopeFormatError, lab_messages, recorded_warnings, relayed_warnings, replay
from ..metadata.layers import SESSION_METADATA_FILE, resolve_metadata
from ..nwb.backends.base import Filler, Shortfall
from ..nwb.backends.hdf5 import copy_fill, write_nwb
from ..nwb.backends.support import check_output_name, require_zarr
from ..nwb.base import Fill, Layout, LayoutOptions
from ..nwb.layout import build_layout
from ..nwb.provenance import source_script
from ..options import STUB_FRAMES, ConversionOptions
from ..outputs.atomic import atomic_output
from ..timing.clock import aligned_clock, session_clock
from ..timing.recordings import Recording, session_recordings
from ..timing.sync import session_alignment
from ..verify.validate import Verification, VerificationError, verify_nwb


@dataclass(frozen=True)
class ConversionResult:
    """What was written, for the command line summary and the Dagster UI."""

    output: Path
    series_frames: dict[str, int]
    dropped_frames: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)  # what went in, device by device

    @property
    def n_frames(self) -> int:
        return sum(self.series_frames.values())


@dataclass(frozen=True)
class Assembly:
    """An NWB file just written: frames per image series, and the recordings it was built from."""

    series_frames: dict[str, int]
    recordings: list[Recording]
    verification: Verification | None

    @property
    def dropped_frames(self) -> int:
        return sum(r.timing.dropped_frames for r in self.recordings)


Progress = Callable[[int], None]
_DEFLATED_FRACTION = 0.7  # deflated size of one-photon frames, measured 0.63 on the bench session


def stub_output(output: Path) -> Path:
    """Where a stub run writes when the output is named for the session (`x.nwb` ->
    `x_stub.nwb`), so that a stub never takes the name, and so the place, of the full file."""
    for suffix in (".nwb.zarr", ".nwb"):
        if output.name.endswith(suffix):
            return output.with_name(output.name.removesuffix(suffix) + "_stub" + suffix)
    return output.with_name(output.name + "_stub")


def _needs_pixels(device: Device, options: ConversionOptions) -> bool:
    return device.kind == "miniscope" or options.embed_cameras


def chunk_path(session: Session, work_dir: Path, video: Path) -> Path:
    """Where the chunk file of `video` lives: its path inside the session, under `work_dir`."""
    if video.is_relative_to(session.root):
        return work_dir / video.relative_to(session.root).with_suffix(".h5")
    digest = hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:12]
    return work_dir / "external" / f"{video.stem}-{digest}.h5"


def expected_frames(session: Session, options: ConversionOptions) -> int:
    """Timestamp rows of the devices whose pixels are stored: a progress total without decoding."""
    total = 0
    for acquisition in session.acquisitions:
        for device in acquisition.devices:
            if device.timestamps is not None and _needs_pixels(device, options):
                total += len(device.timestamps)
    return total


def encode_videos(
    session: Session,
    work_dir: Path,
    options: ConversionOptions = ConversionOptions(),
    on_frame: Progress | None = None,
    acquisitions: list[str] | None = None,
) -> dict[Path, ChunkFile]:
    """Chunk files for every video (or those of the named acquisitions), reusing current ones."""
    done: dict[Path, ChunkFile] = {}
    for acquisition in session.acquisitions:
        if acquisitions is not None and acquisition.label not in acquisitions:
            continue
        for device in acquisition.devices:
            pixels = _needs_pixels(device, options)
            for video in device.videos:
                target = chunk_path(session, work_dir, video)
                done[video] = _current_chunk_file(target, video, options, pixels) or encode_video(
                    video,
                    target,
                    color=device.kind == "camera",
                    pixels=pixels,
                    deflater=options.deflater,
                    workers=options.workers,
                    on_frame=on_frame,
                )
    return done


def _current_chunk_file(
    target: Path, video: Path, options: ConversionOptions, pixels: bool
) -> ChunkFile | None:
    if not target.is_file():
        return None
    try:
        existing = read_chunk_file(target)
    except (MiniscopeFormatError, KeyError):
        return None
    missing_pixels = pixels and not existing.frame_shape and existing.n_frames > 0
    if existing.is_current_for(video, options.deflater) and not missing_pixels:
        return existing
    return None


def probe_videos(session: Session, options: ConversionOptions) -> dict[Path, VideoInfo]:
    """Frame counts and sizes of every video, from packets and headers (no decoding)."""
    return {
        video: probe_video(video, device.kind == "camera", _needs_pixels(device, options))
        for acquisition in session.acquisitions
        for device in acquisition.devices
        for video in device.videos
    }


def _direct_fill(options: ConversionOptions, on_frame: Progress | None) -> Filler:
    def fill(dataset: h5py.Dataset, part: Fill) -> int:
        return encode_into(
            part.video, dataset, part.offset, part.n_frames, options.deflater,
            options.workers, on_frame,
        )  # fmt: skip

    return fill


def _copy_fill(on_frames: Progress | None) -> Filler:
    def fill(dataset: h5py.Dataset, part: Fill) -> int:
        written = copy_fill(dataset, part)
        if on_frames:
            on_frames(written)
        return written

    return fill


def assemble(
    session: Session,
    videos: Mapping[Path, VideoInfo],
    output: Path,
    options: ConversionOptions = ConversionOptions(),
    metadata: dict[str, Any] | None = None,
    on_frames: Progress | None = None,
    fill: Filler | None = None,
    *,
    write_to: Path | None = None,
    overwrite: bool = True,
    metadata_files: tuple[str, ...] = (),
) -> Assembly:
    """Write the NWB file, read it back, and only then give it its name; returns what went in.

    By default the datasets are filled by copying the videos' chunk files; `fill` may instead
    write them some other way. The file is written to `write_to` when the caller holds the
    output (see `atomic_output`), else under a temporary name renamed to `output` (replacing it
    only with `overwrite`). A part left short by `fill` is a `MiniscopeFormatError`.
    """
    metadata = metadata if metadata is not None else resolve_metadata(session)
    fill = fill or _copy_fill(on_frames)
    _check_backend(output, options)
    args = (session, videos, output, options, metadata, fill, metadata_files)
    if write_to is not None:
        return _complete(_assemble_into(write_to, *args))
    with atomic_output(output, overwrite=overwrite) as temporary:
        return _complete(_assemble_into(temporary, *args))


def _assemble_into(
    path: Path,
    session: Session,
    videos: Mapping[Path, VideoInfo],
    output: Path,
    options: ConversionOptions,
    metadata: dict[str, Any],
    fill: Filler,
    metadata_files: tuple[str, ...],
) -> Assembly | Shortfall:
    """The layout of `output` written to `path` (a name the caller holds), or its shortfall."""
    layout, recordings = plan_layout(session, videos, output, options, metadata, metadata_files)
    return _write(layout, path, output, recordings, options, fill)


def _complete(done: Assembly | Shortfall) -> Assembly:
    if isinstance(done, Shortfall):
        raise MiniscopeFormatError(
            done.video, f"gave {done.written} of the {done.promised} frames it promised"
        )
    return done


def plan_layout(
    session: Session,
    videos: Mapping[Path, VideoInfo],
    output: Path,
    options: ConversionOptions,
    metadata: dict[str, Any],
    metadata_files: tuple[str, ...] = (),
) -> tuple[Layout, list[Recording]]:
    """The file to be written at `output`, in memory without any pixel, and its recordings."""
    recordings = session_recordings(
        session,
        videos,
        options.strict,
        concatenated=not options.per_acquisition,
        max_frames=STUB_FRAMES if options.stub else None,
    )
    clock = session_clock(session, recordings, metadata)
    pairs = options.alignment or session_alignment(session.root)
    clock = aligned_clock(clock, recordings, pairs, options.start_offset)
    layout_options = _layout_options(options, metadata_files)
    if session.inventory is not None:
        layout_options = replace(layout_options, left_out=tuple(session.inventory.lines()))
    return build_layout(recordings, metadata, clock, output, layout_options), recordings


def _check_backend(output: Path, options: ConversionOptions) -> None:
    """The output's name fits the backend, and Zarr can be written here: before any decoding."""
    check_output_name(output, options.backend)
    if options.backend == "zarr":
        require_zarr(output)


def _layout_options(options: ConversionOptions, metadata_files: tuple[str, ...]) -> LayoutOptions:
    script, script_name = source_script(asdict(options), list(metadata_files))
    return LayoutOptions(
        per_acquisition=options.per_acquisition,
        embed_cameras=options.embed_cameras,
        neuroconv_names=options.neuroconv_names,
        compression_level=options.compression_level,
        stub_frames=STUB_FRAMES if options.stub else None,
        source_script=script,
        source_script_file_name=script_name,
    )


def _write(
    layout: Layout,
    path: Path,
    output: Path,
    recordings: list[Recording],
    options: ConversionOptions,
    fill: Filler,
) -> Assembly | Shortfall:
    written = write_nwb(layout, path, fill, options.backend)
    if isinstance(written, Shortfall):
        return written
    verification = verify_nwb(path, written) if options.verify else None
    if verification is not None and not verification.passed:
        raise VerificationError(output, verification.problems)
    series: dict[str, int] = {}
    for part in layout.fills:
        name = part.dataset_path.split("/")[1]
        series[name] = series.get(name, 0) + part.n_frames
    return Assembly(series, recordings, verification)


@dataclass(frozen=True)
class _Job:
    """One `convert_session` call, as its steps below share it."""

    session: Session
    target: Path  # the temporary name being written (see atomic_output)
    output: Path
    options: ConversionOptions
    metadata: dict[str, Any]
    progress: Callable[[int, int], Progress] | None
    metadata_files: tuple[str, ...]

    def on_frame(self, total: int, stage: int) -> Progress | None:
        return self.progress(total, stage) if self.progress else None


def _staged(job: _Job, work_dir: Path) -> Assembly:
    """Chunk files first (kept in `work_dir` for re-runs), then the NWB file copies them."""
    total = expected_frames(job.session, job.options)
    videos = encode_videos(job.session, work_dir, job.options, job.on_frame(total, 0))
    return assemble(
        job.session, videos, job.output, job.options, job.metadata, job.on_frame(total, 1),
        write_to=job.target, metadata_files=job.metadata_files,
    )  # fmt: skip


def _staged_in_scratch(job: _Job) -> Assembly:
    """The staged path with chunk files beside the temporary output, removed afterwards."""
    scratch = job.target.with_name(job.target.name + ".chunks")
    try:
        return _staged(job, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _direct(job: _Job, videos: dict[Path, VideoInfo]) -> Assembly | Shortfall:
    """Frames decoded and deflated straight into the NWB datasets: no chunk file is written.

    A video that decodes to fewer frames than its packets promised (a damaged file) leaves the
    layout sized wrong: that comes back as a `Shortfall`, for the staged path to convert.
    """
    total = sum(video.n_frames for video in videos.values() if video.frame_shape)
    fill = _direct_fill(job.options, job.on_frame(total, 0))
    return _assemble_into(
        job.target, job.session, videos, job.output, job.options, job.metadata, fill,
        job.metadata_files,
    )  # fmt: skip


def estimated_bytes(videos: Mapping[Path, VideoInfo], max_frames: int | None = None) -> int:
    """About what the stored pixels take once deflated (one-photon frames keep ~70 %)."""
    frames = {
        v: v.n_frames if max_frames is None else min(v.n_frames, max_frames)
        for v in videos.values()
    }
    raw = sum(n * math.prod(v.frame_shape) for v, n in frames.items() if v.frame_shape)
    return int(raw * _DEFLATED_FRACTION)


def metadata_files(session: Session, lab_file: Path | None, user_file: Path | None) -> list[Path]:
    """The metadata files applied to `session`, in the order they apply (for provenance)."""
    own = session.root / SESSION_METADATA_FILE
    return [f for f in (lab_file, own if own.is_file() else None, user_file) if f is not None]


def convert_session(
    path: Session | Path | str,
    output: Path | str,
    options: ConversionOptions = ConversionOptions(),
    metadata: dict[str, Any] | None = None,
    metadata_path: Path | str | None = None,
    work_dir: Path | str | None = None,
    progress: Callable[[int, int], Progress] | None = None,
    *,
    lab_metadata_path: Path | str | None = None,
    overwrite: bool = False,
) -> ConversionResult:
    """Convert one session (a folder, or a `Session` from `session_from_files`) to one NWB file.

    Metadata (lab file < the session's nwb_metadata.yaml < `metadata_path` < `metadata`) is
    validated, the output checked (never replaced unless `overwrite`; one writer at a time;
    enough free space) before any frame is decoded. Frames stream through in bounded memory
    whatever the session length. Without `work_dir` (or for a stub) they are decoded straight
    into the NWB file; with it, chunk files are kept there so that a re-run after a new
    acquisition decodes only the new videos. `progress(total_frames, stage)` may return a
    per-frame callback.
    """
    from ..outputs.atomic import writable_folder
    from ..outputs.guard import absolute, every_video, refuse_writes_inside

    began = time.perf_counter()
    _check_backend(Path(output), options)
    with relayed_warnings() as caught:  # from reading the folder on, for the result
        given = None if isinstance(path, Session) else absolute(path)  # `.` is named, not ""
        session = path if isinstance(path, Session) else discover(absolute(path))
        lab, user = (Path(p) if p is not None else None for p in (lab_metadata_path, metadata_path))
        work = Path(work_dir) if work_dir is not None and not options.stub else None
        # Nothing written inside what is read (the output, its temporary file and lock, chunk
        # files), checked on real paths before any frame is decoded; the work folder writable.
        chunks = [chunk_path(session, work, v) for v in every_video(session)] if work else []
        refuse_writes_inside([session, given, lab, user], outputs=[output, *chunks],
                             folders=[work])  # fmt: skip
        if work is not None:
            writable_folder(work)
        merged = resolve_metadata(session, lab_file=lab, user_file=user, overrides=metadata)
        if options.alignment is None:  # the session's sync.csv, checked before any decoding
            options = replace(options, alignment=session_alignment(session.root))
        sources = tuple(str(f) for f in metadata_files(session, lab, user))
        videos = probe_videos(session, options)
        expected = estimated_bytes(videos, STUB_FRAMES if options.stub else None)
        with atomic_output(Path(output), overwrite=overwrite, expected_bytes=expected) as target:
            job = _Job(session, target, Path(output), options, merged, progress, sources)
            if work_dir is not None and not options.stub:
                done = _staged(job, Path(work_dir))
            else:
                done = _direct_or_staged(job, videos)
    return ConversionResult(
        output=Path(output),
        series_frames=done.series_frames,
        dropped_frames=done.dropped_frames,
        seconds=time.perf_counter() - began,
        warnings=lab_messages(caught),
        recordings=done.recordings,
    )


def _direct_or_staged(job: _Job, videos: dict[Path, VideoInfo]) -> Assembly:
    """The direct path; the staged one (in scratch) when a video falls short of its promise.
    Only the warnings of the path that made the file are kept."""
    with recorded_warnings() as attempt:
        direct = _direct(job, videos)
    if isinstance(direct, Shortfall):
        return _staged_in_scratch(job)
    replay(attempt)
    return direct
