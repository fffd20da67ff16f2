"""Decode one video into the compressed chunks its NWB dataset will hold.

A chunk file is a small HDF5 file whose dataset has exactly the layout, chunk shape and deflate
filter of the NWB dataset: one frame per chunk, in NWB's (frame, width, height) order. Assembling
the NWB file is then a byte copy of chunks (`read_direct_chunk`/`write_direct_chunk`), never a
second compression, and a session that gains an acquisition re-decodes only the new videos.

Compression runs in worker threads (the deflate libraries release the GIL) while ffmpeg decodes
in its own process, so decoding and compression overlap on all cores.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_output
from .deflate import Deflater
from .errors import MiniscopeFormatError
from .video import avi_frame_size, count_frames, open_video

DATASET = "frames"
_GROW = 512  # frames added to the dataset extent at a time
DEFAULT_DEFLATER = Deflater()


@dataclass(frozen=True)
class ChunkFile:
    """What a chunk file holds and where it came from (to decide whether it is still current)."""

    path: Path | None  # None: counted and sized only (written straight into the NWB file)
    source: Path
    source_size: int
    source_mtime_ns: int
    n_frames: int
    frame_shape: tuple[int, ...]
    deflater: Deflater
    decode_error: str

    def is_current_for(self, source: Path, deflater: Deflater) -> bool:
        """True when `source` is unchanged and was deflated the same way."""
        stat = source.stat()
        now = (stat.st_size, stat.st_mtime_ns, deflater)
        return now == (self.source_size, self.source_mtime_ns, self.deflater)


def nwb_order(frame: np.ndarray) -> np.ndarray:
    """(height, width[, 3]) as decoded -> (width, height[, 3]) as NWB stores images."""
    return np.ascontiguousarray(frame.swapaxes(0, 1))


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
    stream = open_video(source, color=color)
    shape = (stream.width, stream.height, 3) if color else (stream.width, stream.height)
    dataset = h5.create_dataset(
        DATASET,
        shape=(0, *shape),
        maxshape=(None, *shape),
        dtype=np.uint8,
        chunks=(1, *shape),
        compression="gzip",
        compression_opts=deflate.level,
    )
    written, error = write_chunks(stream.frames, dataset, 0, deflate, workers, on_frame, grow=True)
    dataset.resize(written, axis=0)
    return written, error


def write_chunks(
    frames: Iterator[np.ndarray],
    dataset: h5py.Dataset,
    offset: int,
    deflate: Deflater,
    workers: int | None,
    on_frame: Callable[[int], None] | None,
    grow: bool = False,
) -> tuple[int, str]:
    """Deflate `frames` into `dataset` from row `offset`, one chunk per frame.

    Returns (frames written, decoding error); frames decoded before an error are kept.
    """
    zeros = (0,) * (dataset.ndim - 1)
    written, error = 0, ""
    try:
        for index, chunk in _compressed(frames, deflate, workers):
            row = offset + index
            if grow and row >= dataset.shape[0]:
                dataset.resize(row + _GROW, axis=0)
            dataset.id.write_direct_chunk((row, *zeros), chunk)
            written = index + 1
            if on_frame:
                on_frame(1)
    except MiniscopeFormatError as failure:
        error = failure.problem
    return written, error


def encode_into(
    source: ChunkFile,
    dataset: h5py.Dataset,
    offset: int,
    n_frames: int,
    deflate: Deflater,
    workers: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Decode the first `n_frames` of `source` straight into `dataset[offset:]`; frames written."""
    if n_frames == 0:
        return 0
    stream = open_video(source.source, color=len(source.frame_shape) == 3)
    try:
        frames = islice(stream.frames, n_frames)
        written, _ = write_chunks(frames, dataset, offset, deflate, workers, on_frame)
    finally:
        stream.frames.close()
    return written


def probe_video(source: Path, color: bool, pixels: bool, deflater: Deflater) -> ChunkFile:
    """Frame count (packets of a finalised AVI) and frame size, without decoding the frames."""
    stat = source.stat()
    n_frames, shape, error = 0, (), ""
    try:
        n_frames = count_frames(source)
        if pixels and n_frames:
            size = avi_frame_size(source) or _decoded_size(source, color)
            shape = (*size, 3) if color else size
    except MiniscopeFormatError as failure:
        error = failure.problem
    if stat.st_size == 0:
        error = "the file is empty (0 bytes)"
    return ChunkFile(None, source, stat.st_size, stat.st_mtime_ns, n_frames, shape, deflater, error)


def _decoded_size(source: Path, color: bool) -> tuple[int, int]:
    stream = open_video(source, color=color)
    stream.frames.close()
    return stream.width, stream.height


def _compressed(
    frames: Iterator[np.ndarray], deflate: Deflater, workers: int | None
) -> Iterator[tuple[int, bytes]]:
    """(index, deflated NWB-ordered frame) in order, with a bounded number in flight.

    A decoding error is raised only after every frame decoded before it has been yielded.
    """
    workers = workers or os.cpu_count() or 1
    pending: deque[Future[bytes]] = deque()
    failure: MiniscopeFormatError | None = None
    index = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for frame in frames:
                pending.append(pool.submit(lambda f=frame: deflate(nwb_order(f))))
                if len(pending) > 2 * workers:
                    yield index, pending.popleft().result()
                    index += 1
        except MiniscopeFormatError as error:
            failure = error
        for position, future in enumerate(pending, start=index):
            yield position, future.result()
    if failure is not None:
        raise failure


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
        path=path,
        source=Path(str(attrs["source"])),
        source_size=int(attrs["source_size"]),
        source_mtime_ns=int(attrs["source_mtime_ns"]),
        n_frames=int(attrs["n_frames"]),
        frame_shape=tuple(int(n) for n in frame_shape),
        deflater=Deflater(str(attrs["engine"]), int(attrs["level"])),
        decode_error=str(attrs.get("decode_error", "")),
    )


def copy_chunks(source: ChunkFile, target: h5py.Dataset, offset: int, n_frames: int) -> None:
    """Copy the first `n_frames` compressed frames of `source` to `target[offset:]` as bytes."""
    if n_frames == 0 or source.path is None:
        return
    zeros = (0,) * len(source.frame_shape)
    with h5py.File(source.path, "r") as h5:
        dataset_id = h5[DATASET].id
        for index in range(n_frames):
            mask, chunk = dataset_id.read_direct_chunk((index, *zeros))
            target.id.write_direct_chunk((offset + index, *zeros), chunk, filter_mask=mask)
