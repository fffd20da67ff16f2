"""`convert_session`: one session to one NWB file in one call, and how its stages are chained.

The policy lives here: the output checked before any decoding (never inside a recording, never
replaced unasked, enough free space), then frames decoded straight into the file, or through
chunk files in a work folder when one is given (kept for re-runs) or when a damaged video
falls short of the frames it promised (in scratch, removed afterwards).
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..collection.discovery import discover
from ..daq.model import Session
from ..daq.video import VideoInfo
from ..encode.chunks import ChunkWriter, encode_into
from ..errors import MiniscopeWarning, lab_messages, recorded_warnings, relayed_warnings, replay
from ..metadata.layers import SESSION_METADATA_FILE, resolve_metadata
from ..nwb.backends.base import Filler, Shortfall
from ..nwb.base import Fill
from ..options import STUB_FRAMES, ConversionOptions
from ..outputs.atomic import OutputExistsError, atomic_output, writable_folder
from ..outputs.guard import absolute, every_video, refuse_writes_inside
from ..quality.model import SessionQC, Thresholds
from ..quality.page import write_page
from ..timing.recordings import Recording
from ..timing.sync import session_alignment
from .frames import FrameQuality
from .qc import give_back_heap, report_path, session_qc
from .stages import (
    Assembly,
    Progress,
    assemble,
    assemble_into,
    check_backend,
    chunk_path,
    encode_videos,
    expected_frames,
    probe_videos,
)


@dataclass(frozen=True)
class ConversionResult:
    """What was written, for the command line summary and the Dagster UI."""

    output: Path
    series_frames: dict[str, int]
    dropped_frames: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)  # what went in, device by device
    report: Path | None = None  # the QC report beside the file
    quality: SessionQC | None = None  # what the report shows: its numbers and verdicts

    @property
    def n_frames(self) -> int:
        return sum(self.series_frames.values())


def stub_output(output: Path) -> Path:
    """Where a stub run writes when the output is named for the session (`x.nwb` ->
    `x_stub.nwb`), so that a stub never takes the name, and so the place, of the full file."""
    for suffix in (".nwb.zarr", ".nwb"):
        if output.name.endswith(suffix):
            return output.with_name(output.name.removesuffix(suffix) + "_stub" + suffix)
    return output.with_name(output.name + "_stub")


def _direct_fill(
    options: ConversionOptions, on_frame: Progress | None, quality: FrameQuality
) -> Filler:
    def fill(store: ChunkWriter, part: Fill) -> int:
        store.on_frame = on_frame
        return encode_into(
            part.video, store, part.offset, part.n_frames, options.deflater, options.workers,
            quality.observer(part),
        )  # fmt: skip

    return fill


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
    quality = FrameQuality(job.options.report)
    fill = _direct_fill(job.options, job.on_frame(total, 0), quality)
    return assemble_into(
        job.target, job.session, videos, job.output, job.options, job.metadata, fill,
        job.metadata_files, quality,
    )  # fmt: skip


_DEFLATED_FRACTION = 0.7  # deflated size of one-photon frames, measured 0.63 on the bench session


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
    thresholds: Thresholds = Thresholds(),
) -> ConversionResult:
    """Convert one session (a folder, or a `Session` from `session_from_files`) to one NWB file.

    Metadata (lab file < the session's nwb_metadata.yaml < `metadata_path` < `metadata`) is
    validated, the output checked (never replaced unless `overwrite`; one writer at a time;
    enough free space) before any frame is decoded. Frames stream through in bounded memory
    whatever the session length. Without `work_dir` (or for a stub) they are decoded straight
    into the NWB file; with it, chunk files are kept there so that a re-run after a new
    acquisition decodes only the new videos. `progress(total, stage)` may return a callback
    of progress: frames of stage 0 (decoding) and 1 (assembling), the QC report's page (2).
    """
    began = time.perf_counter()
    check_backend(Path(output), options)
    with relayed_warnings() as caught:  # from reading the folder on, for the result
        given = None if isinstance(path, Session) else absolute(path)  # `.` is named, not ""
        session = path if isinstance(path, Session) else discover(absolute(path))
        lab, user = (Path(p) if p is not None else None for p in (lab_metadata_path, metadata_path))
        work = Path(work_dir) if work_dir is not None and not options.stub else None
        # Nothing written inside what is read (the output, its temporary file and lock, chunk
        # files), checked on real paths before any frame is decoded; the work folder writable.
        chunks = [chunk_path(session, work, v) for v in every_video(session)] if work else []
        report = report_path(Path(output)) if options.report else None
        refuse_writes_inside([session, given, lab, user], outputs=[output, report, *chunks],
                             folders=[work])  # fmt: skip
        if report is not None and not overwrite and os.path.lexists(report):
            raise OutputExistsError(report)
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
        page = progress(1, 2) if progress and report else None  # stage 2: the QC report
        quality = None
        if report:  # within the conversion's peak memory: see give_back_heap
            give_back_heap()
            quality = session_qc(session, done, Path(output), None, thresholds)
            done = replace(done, frame_stats={})  # the sampled frames go before the page
        written = _written_report(quality, report)
        if page:
            page(1)
    return ConversionResult(
        output=Path(output),
        series_frames=done.series_frames,
        dropped_frames=done.dropped_frames,
        seconds=time.perf_counter() - began,
        warnings=lab_messages(caught),
        recordings=done.recordings,
        report=written,
        quality=quality,
    )


def _written_report(quality: SessionQC | None, report: Path | None) -> Path | None:
    """The report written (checked not to exist unasked before decoding); a disk that refuses
    it is a warning: the NWB file is complete and keeps its name."""
    if quality is None or report is None:
        return None
    give_back_heap()  # what the motion estimate freed, for the page's drawing
    try:
        return write_page(quality, report, overwrite=True)
    except OSError as error:
        warnings.warn(f"{report}: QC report not written ({error})", MiniscopeWarning, stacklevel=3)
        return None


def _direct_or_staged(job: _Job, videos: dict[Path, VideoInfo]) -> Assembly:
    """The direct path; the staged one (in scratch) when a video falls short of its promise.
    Only the warnings of the path that made the file are kept."""
    with recorded_warnings() as attempt:
        direct = _direct(job, videos)
    if isinstance(direct, Shortfall):
        return _staged_in_scratch(job)
    replay(attempt)
    return direct
