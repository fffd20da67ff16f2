"""Decode one video into the compressed frames its NWB dataset will hold.

A chunk file is a small HDF5 file holding one video's frames, one deflated frame per chunk, in
NWB's (frame, width, height) order and the NWB dataset's deflate filter. The NWB dataset holds
several frames per chunk (`ChunkWriter`); a frame's deflate stream joins its neighbours' into
one chunk by byte copies (`deflate.join_streams`), so assembling the NWB file never compresses
twice, whatever row a video starts at, and a session that gains an acquisition re-decodes only
the new videos.

Compression runs in worker threads (the deflate libraries release the GIL) while ffmpeg decodes
in its own process, so decoding and compression overlap on all cores. A long video going
straight into the NWB file is decoded as two halves by two ffmpeg processes with a share of the
cores each, because FFV1's frame threading costs about 8 % more CPU than decoding on one thread.
"""

from __future__ import annotations

import math
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from ..daq.avi import FrameStream, avi_index
from ..daq.video import VideoInfo, count_frames, frame_size, open_video
from ..errors import MiniscopeFormatError
from ..outputs.atomic import atomic_output
from .deflate import Deflater, join_streams

DATASET = "frames"
STREAMS = "joinable"  # a chunk file's `streams` attribute: frames deflated as `Deflater` does


class FrameSink(Protocol):
    """One decoding thread's view of its frames: `add(row, frame)` for each frame it decodes
    (the buffer is reused at once), `close()` when the thread is done."""

    def add(self, row: int, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


# Called once per decoding thread with the frame shape: so statistics are gathered from the
# frames as they are decoded, nothing decoded twice.
Observer = Callable[[tuple[int, ...]], FrameSink]
_GROW = 512  # frames added to the dataset extent at a time
_SPLIT_FRAMES = 240  # fewer: one decoder (a second ffmpeg start would cost more than it saves)
DEFAULT_DEFLATER = Deflater()


@dataclass(frozen=True)
class Share:
    """The frames of one decoder, for consecutive rows of a dataset from `first_row`."""

    stream: FrameStream
    first_row: int
    limit: int | None  # frames wanted; None: all


@dataclass(frozen=True)
class ChunkFile(VideoInfo):
    """A video whose frames were deflated into the chunk file at `path`."""

    path: Path
    deflater: Deflater
    joinable: bool = True  # False: an older converter's, whose frames cannot be joined

    def is_current_for(self, source: Path, deflater: Deflater) -> bool:
        """True when `source` is unchanged and was deflated the same way."""
        stat = source.stat()
        now = (stat.st_size, stat.st_mtime_ns, deflater, True)
        return now == (self.size, self.mtime_ns, self.deflater, self.joinable)


def encode_video(
    source: Path,
    target: Path,
    *,
    color: bool = False,
    pixels: bool = True,
    deflater: Deflater = DEFAULT_DEFLATER,
    workers: int | None = None,
    on_frame: Callable[[int], None] | None = None,
    observe: Observer | None = None,
    extra: Callable[[h5py.File], None] | None = None,
) -> ChunkFile:
    """Decode `source` and write its deflated frames to `target` (atomically, replacing it).

    With `pixels=False` (behaviour videos that the NWB file links to) only the decodable frames
    are counted and recorded. `observe` sees every decoded frame (see `Observer`); `extra`
    stores what else belongs with the frames before the file takes its name.
    """
    stat = source.stat()
    decode_error = ""
    with atomic_output(target, overwrite=True) as partial, h5py.File(partial, "w") as h5:
        h5.attrs.update(
            source=str(source), source_size=stat.st_size, source_mtime_ns=stat.st_mtime_ns
        )
        h5.attrs.update(engine=deflater.engine, level=deflater.level, streams=STREAMS)
        n_frames = 0
        if stat.st_size == 0:
            decode_error = "the file is empty (0 bytes)"
        else:
            try:
                if pixels:
                    n_frames, decode_error = _write_frames(
                        h5, source, color, deflater, workers, on_frame, observe
                    )
                else:
                    n_frames = count_frames(source)
            except MiniscopeFormatError as error:
                decode_error = error.problem
        h5.attrs.update(decode_error=decode_error, n_frames=n_frames)
        if extra is not None:
            extra(h5)
    return read_chunk_file(target)


def _write_frames(
    h5: h5py.File,
    source: Path,
    color: bool,
    deflate: Deflater,
    workers: int | None,
    on_frame: Callable[[int], None] | None,
    observe: Observer | None,
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
        writer = ChunkWriter(dataset, on_frame, grow=True)
        written, error = write_chunks([Share(stream, 0, None)], writer, deflate, workers, observe)
        writer.resize(written)
    return written, error


def write_chunks(
    shares: Sequence[Share],
    store: ChunkWriter,
    deflate: Deflater,
    workers: int | None,
    observe: Observer | None = None,
) -> tuple[int, str]:
    """Deflate the frames of every share into `store`'s dataset, at the share's rows.

    Each thread reads a frame from its share's pipe into a buffer of its own, deflates it and
    stores it: the frame never changes hands or cores between the three, and no per-frame task
    or future is made (on two cores every bit of Python's CPU is the decoder's). The `workers`
    threads are dealt to the shares evenly, at least one each; two on one share take its frames
    in turn (a decoder faster than one deflating thread, as for uncompressed GREY video, then
    still keeps every core busy). Returns (frames written, decoding error); frames decoded
    before an error are kept, at their rows.
    """
    before = store.written
    readers = [_Reader(share) for share in shares]
    per_share = max(1, (workers or os.cpu_count() or 1) // len(shares))
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=per_share * len(shares)) as pool:
        futures = [
            pool.submit(_deflate_share, reader, deflate, store, stop, observe)
            for reader in readers
            for _ in range(per_share)
        ]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # an exception in one thread, or Ctrl-C here, stops the others
    errors = [future.result() for future in futures]  # raises what a thread raised
    return store.written - before, next((error for error in errors if error), "")


class _Reader:
    """A share's stream, read by its threads one frame at a time, with the next frame's row."""

    def __init__(self, share: Share) -> None:
        self.share = share
        self.lock = threading.Lock()
        self.read = 0
        self.ended = False

    def next_into(self, frame: np.ndarray) -> int | None:
        """Read the next frame into `frame`: its row, or None at the end of the share.

        Raises MiniscopeFormatError (once) if its decoder failed; the share has then ended.
        """
        with self.lock:
            limit = self.share.limit
            if self.ended or (limit is not None and self.read >= limit):
                return None
            try:
                got = self.share.stream.read_into(frame)
            except MiniscopeFormatError:
                self.ended = True
                raise
            if not got:
                self.ended = True
                return None
            self.read += 1
            return self.share.first_row + self.read - 1


# HDF5 is not thread-safe: its calls on a file (a chunk written or read, the dataset resized)
# go one at a time, whichever writer makes them, whatever h5py version serializes what.
_STORAGE = threading.Lock()


class ChunkWriter:
    """Frames' deflate streams into a dataset of whole frames per chunk, from many threads.

    A chunk is written (`write_direct_chunk`, HDF5 taking one at a time) once all its frames are
    in, their streams joined, whichever part of the session or decoder they came from; the last
    chunk of the dataset is completed with zero frames, as HDF5 and Zarr store edge chunks whole.
    With `grow` (a chunk file: one frame per chunk) the dataset is extended as frames come.
    """

    def __init__(
        self, dataset: Any, on_frame: Callable[[int], None] | None = None, grow: bool = False
    ) -> None:
        self.dataset, self.on_frame, self.grow = dataset, on_frame, grow
        self.per_chunk = int(dataset.chunks[0])
        if grow and self.per_chunk != 1:
            raise ValueError("only a dataset of one frame per chunk can grow frame by frame")
        self.zeros = (0,) * (dataset.ndim - 1)
        self.frame_shape, self.dtype = tuple(dataset.shape[1:]), dataset.dtype
        self.frame_bytes = math.prod(self.frame_shape) * self.dtype.itemsize
        self.rows = int(dataset.shape[0])  # h5py asks HDF5 each time: kept here, as it changes
        self.pending: dict[int, dict[int, bytes]] = {}  # chunk's first row -> row -> stream
        self.in_flight: dict[int, dict[int, bytes]] = {}  # complete, being joined and written
        self.lock = threading.Lock()
        self.written = 0

    def put(self, row: int, stream: bytes) -> None:
        """Keep a frame's stream; the thread that completes a chunk joins it outside the lock,
        so the others go on putting frames meanwhile, and writes it under `_STORAGE`."""
        with self.lock:
            if self.grow and row >= self.rows:
                self.rows = row + _GROW
                with _STORAGE:
                    self.dataset.resize(self.rows, axis=0)
            first = row - row % self.per_chunk
            frames = self.pending.setdefault(first, {})
            frames[row] = stream
            end = min(first + self.per_chunk, self.rows)
            complete = len(frames) == end - first
            if complete:
                self.in_flight[first] = self.pending.pop(first)
        if complete:
            padding = [_zero_stream(self.frame_bytes)] * (first + self.per_chunk - end)
            chunk = join_streams([*(frames[r] for r in range(first, end)), *padding],
                                 self.frame_bytes)  # fmt: skip
            with _STORAGE:
                self.dataset.id.write_direct_chunk((first, *self.zeros), chunk)
        with self.lock:
            if complete:
                del self.in_flight[first]
            self.written += 1
            if self.on_frame:
                self.on_frame(1)

    def resize(self, rows: int) -> None:
        """The dataset cut (or grown) to `rows`, once every frame is in."""
        with self.lock, _STORAGE:
            self.rows = rows
            self.dataset.resize(rows, axis=0)

    def frame(self, row: int) -> np.ndarray:
        """Frame `row` as stored (or waiting for the rest of its chunk, or being written)."""
        first = row - row % self.per_chunk
        with self.lock:
            waiting = {**self.in_flight.get(first, {}), **self.pending.get(first, {})}.get(row)
            if waiting is None:
                with _STORAGE:
                    chunk = self.dataset.id.read_direct_chunk((first, *self.zeros))[1]
            else:
                chunk = waiting
        at = 0 if waiting else (row - first) * self.frame_bytes
        raw = zlib.decompress(chunk)[at : at + self.frame_bytes]
        return np.frombuffer(raw, self.dtype).reshape(self.frame_shape)


@lru_cache(maxsize=4)
def _zero_stream(frame_bytes: int) -> bytes:
    """The padding of a last chunk: a frame of zeros (what a chunk never written reads as)."""
    return Deflater("zlib", 1)(np.zeros(frame_bytes, np.uint8))


def _deflate_share(
    reader: _Reader,
    deflate: Deflater,
    store: ChunkWriter,
    stop: threading.Event,
    observe: Observer | None,
) -> str:
    """One thread's loop: read, deflate, store, until the share ends; its decoding error or ""."""
    frame = np.empty(reader.share.stream.frame_shape, np.uint8)
    sink = observe(frame.shape) if observe is not None else None
    try:
        while not stop.is_set():
            try:
                row = reader.next_into(frame)
            except MiniscopeFormatError as failure:
                return failure.problem
            if row is None:
                break
            store.put(row, deflate(frame))
            if sink is not None:
                sink.add(row, frame)
        return ""
    finally:
        if sink is not None:
            sink.close()


def encode_into(
    video: VideoInfo,
    store: ChunkWriter,
    offset: int,
    n_frames: int,
    deflate: Deflater,
    workers: int | None = None,
    observe: Observer | None = None,
) -> int:
    """Decode the first `n_frames` of `video` straight into `store`'s rows from `offset`; frames
    written.

    Fewer than `n_frames` when the video decodes to fewer frames than it promised (or, split in
    two halves, when the second did not start where the first ends).
    """
    if n_frames == 0:
        return 0
    color = len(video.frame_shape) == 3
    middle = _middle(video.source, n_frames)
    if middle is None:
        with open_video(video.source, color, nwb_order=True) as stream:
            share = Share(stream, offset, n_frames)
            return write_chunks([share], store, deflate, workers, observe)[0]
    threads = max(1, (os.cpu_count() or 2) // 2)
    with (
        open_video(video.source, color, nwb_order=True, threads=threads) as head,
        open_video(video.source, color, nwb_order=True, first=middle, threads=threads) as tail,
    ):
        shares = [Share(head, offset, middle), Share(tail, offset + middle, n_frames - middle)]
        written, _ = write_chunks(shares, store, deflate, workers, observe)
        if written == n_frames and not _halves_meet(head, store, offset + middle):
            return middle
    return written


def _middle(source: Path, n_frames: int) -> int | None:
    """Where a video's second half starts: the keyframe nearest its middle; None: do not split.

    Two decoders pay off with two cores or more and enough frames to outweigh a second ffmpeg
    start; the second starts at a keyframe of the AVI's index, so that it decodes nothing twice.
    """
    if n_frames < _SPLIT_FRAMES or (os.cpu_count() or 1) < 2:
        return None
    index = avi_index(source)
    if index is None or index.n_frames < n_frames:
        return None
    keyframes = np.flatnonzero(index.keyframes[1:n_frames]) + 1
    if len(keyframes) == 0:
        return None
    return int(keyframes[np.argmin(np.abs(keyframes - n_frames // 2))])


def _halves_meet(head: FrameStream, store: ChunkWriter, row: int) -> bool:
    """Whether the frame after the first half is the one the second half stored at `row`.

    The second decoder found its start through timestamps; this one extra frame from the first
    proves that no frame was skipped or repeated where the halves meet.
    """
    frame = np.empty(head.frame_shape, np.uint8)
    try:
        if not head.read_into(frame):
            return False
    except MiniscopeFormatError:
        return False
    return bool(np.array_equal(frame, store.frame(row)))


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
        joinable=attrs.get("streams") == STREAMS,
    )


def copy_chunks(source: VideoInfo, target: ChunkWriter, offset: int, n_frames: int) -> None:
    """Copy the first `n_frames` deflated frames of `source`'s chunk file to `target`'s rows
    from `offset`, as bytes."""
    if n_frames == 0:
        return
    if not isinstance(source, ChunkFile) or not source.joinable:
        raise TypeError(f"{source.source} has no chunk file to copy frames from")
    zeros = (0,) * len(source.frame_shape)
    with h5py.File(source.path, "r") as h5:
        dataset_id = h5[DATASET].id
        for index in range(n_frames):
            target.put(offset + index, dataset_id.read_direct_chunk((index, *zeros))[1])
