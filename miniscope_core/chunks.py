"""Decode one video into the compressed chunks its NWB dataset will hold.

A chunk file is a small HDF5 file whose dataset has exactly the layout, chunk shape and deflate
filter of the NWB dataset: one frame per chunk, in NWB's (frame, width, height) order. Assembling
the NWB file is then a byte copy of chunks (`read_direct_chunk`/`write_direct_chunk`), never a
second compression, and a session that gains an acquisition re-decodes only the new videos.

Compression runs in worker threads (the deflate libraries release the GIL) while ffmpeg decodes
in its own process, so decoding and compression overlap on all cores.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_output
from .deflate import Deflater
from .errors import MiniscopeFormatError
from .video import VideoInfo, VideoStream, count_frames, frame_size, open_video

DATASET = "frames"
_GROW = 512  # frames added to the dataset extent at a time
_SPARE_FRAMES = 2  # frames read ahead of the deflate threads, beyond one per thread
DEFAULT_DEFLATER = Deflater()


@dataclass(frozen=True)
class ChunkFile(VideoInfo):
    """A video whose frames were deflated into the chunk file at `path`."""

    path: Path
    deflater: Deflater

    def is_current_for(self, source: Path, deflater: Deflater) -> bool:
        """True when `source` is unchanged and was deflated the same way."""
        stat = source.stat()
        now = (stat.st_size, stat.st_mtime_ns, deflater)
        return now == (self.size, self.mtime_ns, self.deflater)


def encode_video(
    source: Path,
    target: Path,
    *,
    color: bool = False,
    pixels: bool = True,
    deflater: Deflater = DEFAULT_DEFLATER,
    workers: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> ChunkFile:
    """Decode `source` and write its deflated frames to `target` (atomically, replacing it).

    With `pixels=False` (behaviour videos that the NWB file links to) only the decodable frames
    are counted and recorded.
    """
    stat = source.stat()
    decode_error = ""
    with atomic_output(target, overwrite=True) as partial, h5py.File(partial, "w") as h5:
        h5.attrs.update(
            source=str(source), source_size=stat.st_size, source_mtime_ns=stat.st_mtime_ns
        )
        h5.attrs.update(engine=deflater.engine, level=deflater.level)
        n_frames = 0
        if stat.st_size == 0:
            decode_error = "the file is empty (0 bytes)"
        else:
            try:
                if pixels:
                    n_frames, decode_error = _write_frames(
                        h5, source, color, deflater, workers, on_frame
                    )
                else:
                    n_frames = count_frames(source)
            except MiniscopeFormatError as error:
                decode_error = error.problem
        h5.attrs.update(decode_error=decode_error, n_frames=n_frames)
    return read_chunk_file(target)


def _write_frames(
    h5: h5py.File,
    source: Path,
    color: bool,
    deflate: Deflater,
    workers: int | None,
    on_frame: Callable[[int], None] | None,
) -> tuple[int, str]:
    """(frames written, decoding error); frames decoded before an error are kept."""
    with open_video(source, color=color, nwb_order=True) as stream:
        dataset = h5.create_dataset(
            DATASET,
            shape=(0, *stream.frame_shape),
            maxshape=(None, *stream.frame_shape),
            dtype=np.uint8,
            chunks=(1, *stream.frame_shape),
            compression="gzip",
            compression_opts=deflate.level,
        )
        written, error = write_chunks(stream, dataset, 0, None, deflate, workers, on_frame, True)
    dataset.resize(written, axis=0)
    return written, error


def write_chunks(
    stream: VideoStream,
    dataset: h5py.Dataset,
    offset: int,
    limit: int | None,
    deflate: Deflater,
    workers: int | None,
    on_frame: Callable[[int], None] | None,
    grow: bool = False,
) -> tuple[int, str]:
    """Deflate the first `limit` frames of `stream` (all if None) into `dataset` from row `offset`.

    One chunk per frame. Returns (frames written, decoding error); frames decoded before an error
    are kept.
    """
    zeros = (0,) * (dataset.ndim - 1)
    written, error = 0, ""
    try:
        for chunk in _compressed(stream, limit, deflate, workers or os.cpu_count() or 1):
            row = offset + written
            if grow and row >= dataset.shape[0]:
                dataset.resize(row + _GROW, axis=0)
            dataset.id.write_direct_chunk((row, *zeros), chunk)
            written += 1
            if on_frame:
                on_frame(1)
    except MiniscopeFormatError as failure:
        error = failure.problem
    return written, error


def _compressed(
    stream: VideoStream, limit: int | None, deflate: Deflater, workers: int
) -> Iterator[bytes]:
    """Deflated frames of `stream` in order, at most `limit`.

    This thread reads each frame from ffmpeg's pipe into one of a ring of buffers and hands it
    to a deflate thread; a buffer is refilled only once its frame has been deflated and taken,
    so memory stays a few frames whatever the video's length. A decoding error is raised only
    after every frame decoded before it has been yielded.
    """
    ring = [np.empty(stream.frame_shape, np.uint8) for _ in range(workers + _SPARE_FRAMES)]
    pending: deque[Future[bytes]] = deque()
    failure: MiniscopeFormatError | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for index in range(limit) if limit is not None else itertools.count():
                if len(pending) == len(ring):
                    yield pending.popleft().result()
                frame = ring[index % len(ring)]
                if not stream.read_into(frame):
                    break
                pending.append(pool.submit(deflate, frame))
        except MiniscopeFormatError as error:
            failure = error
        while pending:
            yield pending.popleft().result()
    if failure is not None:
        raise failure


def encode_into(
    video: VideoInfo,
    dataset: h5py.Dataset,
    offset: int,
    n_frames: int,
    deflate: Deflater,
    workers: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Decode the first `n_frames` of `video` straight into `dataset[offset:]`; frames written.

    Fewer than `n_frames` when the video decodes to fewer frames than it promised.
    """
    if n_frames == 0:
        return 0
    with open_video(video.source, color=len(video.frame_shape) == 3, nwb_order=True) as stream:
        written, _ = write_chunks(stream, dataset, offset, n_frames, deflate, workers, on_frame)
    return written


def probe_video(source: Path, color: bool, pixels: bool) -> VideoInfo:
    """Frame count (packets of a finalised AVI) and frame size, without decoding the frames."""
    stat = source.stat()
    n_frames, error = 0, ""
    shape: tuple[int, ...] = ()
    try:
        n_frames = count_frames(source)
        if pixels and n_frames:
            size = frame_size(source)
            shape = (*size, 3) if color else size
    except MiniscopeFormatError as failure:
        error = failure.problem
    if stat.st_size == 0:
        error = "the file is empty (0 bytes)"
    return VideoInfo(source, stat.st_size, stat.st_mtime_ns, n_frames, shape, error)


def read_chunk_file(path: Path) -> ChunkFile:
    """The description stored in a chunk file written by `encode_video`."""
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            dataset = h5.get(DATASET)
            frame_shape = tuple(dataset.shape[1:]) if dataset is not None else ()
    except OSError as error:
        raise MiniscopeFormatError(path, f"is not a readable chunk file ({error})") from error
    return ChunkFile(
        source=Path(str(attrs["source"])),
        size=int(attrs["source_size"]),
        mtime_ns=int(attrs["source_mtime_ns"]),
        n_frames=int(attrs["n_frames"]),
        frame_shape=tuple(int(n) for n in frame_shape),
        decode_error=str(attrs.get("decode_error", "")),
        path=path,
        deflater=Deflater(str(attrs["engine"]), int(attrs["level"])),
    )


def copy_chunks(source: VideoInfo, target: h5py.Dataset, offset: int, n_frames: int) -> None:
    """Copy the first `n_frames` compressed frames of `source`'s chunk file to `target[offset:]`."""
    if n_frames == 0:
        return
    if not isinstance(source, ChunkFile):
        raise TypeError(f"{source.source} has no chunk file to copy frames from")
    zeros = (0,) * len(source.frame_shape)
    with h5py.File(source.path, "r") as h5:
        dataset_id = h5[DATASET].id
        for index in range(n_frames):
            mask, chunk = dataset_id.read_direct_chunk((index, *zeros))
            target.id.write_direct_chunk((offset + index, *zeros), chunk, filter_mask=mask)
