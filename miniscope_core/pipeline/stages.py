"""The stages of a conversion: probe the videos, encode them into chunk files, lay out and
assemble the NWB file, read it back.

The Dagster assets run these one by one; `convert.convert_session` chooses how to chain them.
Chunk files live in a work folder keyed by each video's path inside the session, and a chunk
file whose source video has not changed is reused, so re-converting a session that gained an
acquisition decodes only the new videos.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..daq.model import Device, Session
from ..daq.video import VideoInfo, count_frames
from ..encode.chunks import ChunkFile, ChunkWriter, encode_video, probe_video, read_chunk_file
from ..errors import MiniscopeFormatError
from ..metadata.layers import resolve_metadata
from ..nwb.backends.base import Filler, Shortfall
from ..nwb.backends.hdf5 import copy_fill, write_nwb
from ..nwb.backends.support import check_output_name, require_zarr
from ..nwb.base import Fill, Layout, LayoutOptions
from ..nwb.layout import build_layout
from ..nwb.provenance import source_script
from ..options import STUB_FRAMES, ConversionOptions
from ..outputs.atomic import atomic_output
from ..quality.stats import FrameSummary
from ..timing.clock import aligned_clock, session_clock
from ..timing.recordings import Recording, session_recordings
from ..timing.sync import session_alignment
from ..verify.validate import Verification, VerificationError, verify_nwb
from .frames import FrameQuality, has_frame_stats, store, video_stats


@dataclass(frozen=True)
class Assembly:
    """An NWB file just written: frames per image series, and the recordings it was built from."""

    series_frames: dict[str, int]
    recordings: list[Recording]
    verification: Verification | None
    layout: Layout
    frame_stats: dict[str, FrameSummary]  # per imaging series, from its frames as decoded

    @property
    def dropped_frames(self) -> int:
        return sum(r.timing.dropped_frames for r in self.recordings)


Progress = Callable[[int], None]


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
            scope = device.kind == "miniscope" and options.report  # its statistics kept
            for video in device.videos:
                target = chunk_path(session, work_dir, video)
                current = _current_chunk_file(target, video, options, pixels, scope)
                done[video] = current or _encoded(video, target, device, options, on_frame)
    return done


def _encoded(
    video: Path, target: Path, device: Device, options: ConversionOptions, on_frame: Progress | None
) -> ChunkFile:
    """`video`'s chunk file, a scope's with its statistics (`frames.QC_GROUP`)."""
    wanted = device.kind == "miniscope" and options.report
    stats = video_stats(_packets(video)) if wanted else None
    return encode_video(
        video,
        target,
        color=device.kind == "camera",
        pixels=_needs_pixels(device, options),
        deflater=options.deflater,
        workers=options.workers,
        on_frame=on_frame,
        observe=stats.observer if stats else None,
        extra=store(stats) if stats else None,
    )


def _packets(video: Path) -> int:
    """The frames a video promises (0 if it cannot say: the statistics then grow as needed)."""
    try:
        return count_frames(video)
    except MiniscopeFormatError:
        return 0


def _current_chunk_file(
    target: Path, video: Path, options: ConversionOptions, pixels: bool, scope: bool
) -> ChunkFile | None:
    if not target.is_file():
        return None
    try:
        existing = read_chunk_file(target)
    except (MiniscopeFormatError, KeyError):
        return None
    missing_pixels = pixels and not existing.frame_shape and existing.n_frames > 0
    missing_stats = scope and existing.n_frames > 0 and not has_frame_stats(target)
    if existing.is_current_for(video, options.deflater) and not (missing_pixels or missing_stats):
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


def _copy_fill(on_frames: Progress | None, quality: FrameQuality) -> Filler:
    def fill(store: ChunkWriter, part: Fill) -> int:
        written = copy_fill(store, part)
        if isinstance(part.video, ChunkFile):
            quality.copied_from(part, part.video.path)
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
    quality = FrameQuality(options.report)
    fill = fill or _copy_fill(on_frames, quality)
    check_backend(output, options)
    args = (session, videos, output, options, metadata, fill, metadata_files, quality)
    if write_to is not None:
        return _complete(assemble_into(write_to, *args))
    with atomic_output(output, overwrite=overwrite) as temporary:
        return _complete(assemble_into(temporary, *args))


def assemble_into(
    path: Path,
    session: Session,
    videos: Mapping[Path, VideoInfo],
    output: Path,
    options: ConversionOptions,
    metadata: dict[str, Any],
    fill: Filler,
    metadata_files: tuple[str, ...],
    quality: FrameQuality,
) -> Assembly | Shortfall:
    """The layout of `output` written to `path` (a name the caller holds), or its shortfall;
    `quality` gathers the statistics of the frames `fill` puts in."""
    layout, recordings = plan_layout(session, videos, output, options, metadata, metadata_files)
    quality.plan(layout.fills)
    written = _write(layout, path, output, options, fill)
    if isinstance(written, Shortfall):
        return written
    series_frames, verification = written
    return Assembly(series_frames, recordings, verification, layout, quality.summaries())


def _complete(done: Assembly | Shortfall) -> Assembly:
    if isinstance(done, Shortfall):
        raise MiniscopeFormatError(
            done.video, f"gave {done.written} of the {done.promised} frames it promised"
        )
    return done


def plan_recordings(
    session: Session, videos: Mapping[Path, VideoInfo], options: ConversionOptions
) -> list[Recording]:
    """Every device of every acquisition with its frames on absolute times, as the file takes
    them (a stub's first frames only)."""
    return session_recordings(
        session,
        videos,
        options.strict,
        concatenated=not options.per_acquisition,
        max_frames=STUB_FRAMES if options.stub else None,
    )


def plan_layout(
    session: Session,
    videos: Mapping[Path, VideoInfo],
    output: Path,
    options: ConversionOptions,
    metadata: dict[str, Any],
    metadata_files: tuple[str, ...] = (),
) -> tuple[Layout, list[Recording]]:
    """The file to be written at `output`, in memory without any pixel, and its recordings."""
    recordings = plan_recordings(session, videos, options)
    clock = session_clock(session, recordings, metadata)
    pairs = options.alignment or session_alignment(session.root)
    clock = aligned_clock(clock, recordings, pairs, options.start_offset)
    layout = layout_options(options, metadata_files)
    if session.inventory is not None:
        layout = replace(layout, left_out=tuple(session.inventory.lines()))
    return build_layout(recordings, metadata, clock, output, layout), recordings


def check_backend(output: Path, options: ConversionOptions) -> None:
    """The output's name fits the backend, and Zarr can be written here: before any decoding."""
    check_output_name(output, options.backend)
    if options.backend == "zarr":
        require_zarr(output)


def layout_options(
    options: ConversionOptions, metadata_files: tuple[str, ...] = ()
) -> LayoutOptions:
    """The layout's share of `options`, with the provenance of this run."""
    script, script_name = source_script(asdict(options), list(metadata_files))
    return LayoutOptions(
        per_acquisition=options.per_acquisition,
        embed_cameras=options.embed_cameras,
        neuroconv_names=options.neuroconv_names,
        compression_level=options.compression_level,
        frames_per_chunk=options.frames_per_chunk,
        series_names=options.series_names,
        stub_frames=STUB_FRAMES if options.stub else None,
        source_script=script,
        source_script_file_name=script_name,
    )


def _write(
    layout: Layout, path: Path, output: Path, options: ConversionOptions, fill: Filler
) -> tuple[dict[str, int], Verification | None] | Shortfall:
    """Frames per series and the read-back, or the shortfall of a video."""
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
    return series, verification
