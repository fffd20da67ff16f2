"""The AVI container as the DAQ software writes it: its header, its idx1 index, raw frames.

Read without a decoder: whether the writer finished the file, the frame size and format, which
packets are keyframes and where each one lies. An uncompressed 8-bit gray video (GREY, as most
real scopes record) holds each frame's pixels as they are, so its frames can be read straight
from the file (`RawGrayStream`) instead of through a decoder and a pipe: on two cores ffmpeg's
copy, transpose and pipe took a quarter of such a conversion's CPU (2.0-2.3 of 8.2-9.5 s
for 3 x 1000 608x608 frames), numpy's transpose from the file 0.30 ms a frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import MiniscopeFormatError

_UNFINISHED_SIZES = {0, 0xFFFFFFFF}  # RIFF sizes an interrupted AVI writer leaves
_HEADER_BYTES = 65536  # the AVI header list, with its stream format, sits at the start
_IDX1_ENTRY = np.dtype([("id", "S4"), ("flags", "<u4"), ("offset", "<u4"), ("size", "<u4")])
_KEYFRAME = 0x10  # AVIIF_KEYFRAME in an idx1 entry's flags
_CHUNK_HEADER = 8  # a chunk's id and size before its data
GRAY_FOURCCS = (b"GREY", b"Y800", b"Y8  ")  # 8-bit gray, one byte per pixel, no palette


def avi_finalised(path: Path) -> bool:
    """True when the writer closed the file: its RIFF size was filled in at the end."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"AVI ":
        return False
    (riff_size,) = struct.unpack("<I", header[4:8])
    return riff_size not in _UNFINISHED_SIZES and riff_size + 8 <= path.stat().st_size


def _video_format(path: Path, length: int) -> bytes | None:
    """The first `length` bytes of the AVI's video format chunk (`strf`: a BITMAPINFOHEADER
    after its 8-byte chunk header), or None when the file has none."""
    with path.open("rb") as handle:
        header = handle.read(_HEADER_BYTES)
    at = header.find(b"strf")
    if header[:4] != b"RIFF" or at < 0 or len(header) < at + length:
        return None
    return header[at : at + length]


def avi_frame_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the AVI's video format header, without starting a decoder."""
    strf = _video_format(path, 20)
    if strf is None:
        return None
    width, height = struct.unpack("<ii", strf[12:20])
    return (width, abs(height)) if width > 0 and height else None


def avi_palettised(path: Path) -> bool:
    """True for an uncompressed (BI_RGB) AVI of 8 bits or fewer per pixel: palette indices."""
    strf = _video_format(path, 28)
    if strf is None:
        return False
    bits, compression = struct.unpack("<HI", strf[22:28])
    return bits <= 8 and compression == 0


def avi_gray8(path: Path) -> bool:
    """True for a video stored as 8-bit gray pixels with no compression (GREY, Y800)."""
    strf = _video_format(path, 28)
    if strf is None:
        return False
    bits, compression = struct.unpack("<H4s", strf[22:28])
    return bits == 8 and compression in GRAY_FOURCCS


@dataclass(frozen=True)
class AviIndex:
    """The video packets a finalised AVI's idx1 index lists, as ffmpeg reads them: which are
    keyframes (where decoding may start), how long a frame lasts, and where each packet's data
    lies in the file and how long it is (`positions` None when the index points nowhere)."""

    keyframes: np.ndarray  # one bool per packet
    frame_seconds: Fraction
    stream: bytes  # the stream's two digits, as in its chunks' ids (b"00")
    sizes: np.ndarray  # bytes of each packet
    positions: np.ndarray | None  # file offset of each packet's data

    @property
    def n_frames(self) -> int:
        return len(self.keyframes)


def avi_index(path: Path) -> AviIndex | None:
    """The idx1 index of the first video stream, or None when the file is not that simple.

    Not simple: an OpenDML index or a second RIFF (ffmpeg reads those instead of idx1), no idx1,
    a zero-size entry, a stream that does not start at time 0. ffmpeg copes with those itself.
    """
    with path.open("rb") as handle:
        stream, movi, at, end = None, None, 12, path.stat().st_size
        while at + 8 <= end:
            handle.seek(at)
            kind, size = struct.unpack("<4sI", handle.read(8))
            listed = handle.read(4) if kind == b"LIST" else b""
            if listed == b"hdrl":
                stream = _video_stream(handle.read(size - 4))
            elif listed == b"movi":
                movi = at + 8  # idx1 offsets usually count from the 'movi' tag
            elif kind == b"idx1" and stream is not None:
                return _read_index(handle, handle.read(size), *stream, movi)
            elif kind == b"RIFF":
                return None
            at += 8 + size + (size & 1)
    return None


def _video_stream(header: bytes) -> tuple[bytes, Fraction] | None:
    """(two-digit number, frame duration) of the first video stream, from the AVI header list."""
    number = 0
    for kind, body in _chunks(header, 0):
        if kind != b"LIST" or body[:4] != b"strl":
            continue
        parts = dict(_chunks(body, 4))
        strh = parts.get(b"strh", b"")
        if strh[:4] == b"vids" and len(strh) >= 32:
            scale, rate, start = struct.unpack_from("<III", strh, 20)
            if b"indx" in parts or start or not scale or not rate:
                return None
            return b"%02d" % number, Fraction(scale, rate)
        number += 1
    return None


def _chunks(data: bytes, at: int) -> Iterator[tuple[bytes, bytes]]:
    """(id, body) of the RIFF chunks in `data` from `at` on."""
    while at + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, at)
        yield kind, data[at + 8 : at + 8 + size]
        at += 8 + size + (size & 1)


def _read_index(
    handle: BinaryIO, index: bytes, stream: bytes, frame_seconds: Fraction, movi: int | None
) -> AviIndex | None:
    """`stream`'s video packets (`NNdc`/`NNdb`) in an idx1 index."""
    entries = np.frombuffer(index, dtype=_IDX1_ENTRY, count=len(index) // _IDX1_ENTRY.itemsize)
    video = entries[(entries["id"] == stream + b"dc") | (entries["id"] == stream + b"db")]
    if np.any(video["size"] == 0):
        return None
    base = _index_base(handle, video, movi)
    positions = None if base is None else base + video["offset"].astype(np.int64) + _CHUNK_HEADER
    keyframes = (video["flags"] & _KEYFRAME) != 0
    return AviIndex(keyframes, frame_seconds, stream, video["size"].astype(np.int64), positions)


def _index_base(handle: BinaryIO, video: np.ndarray, movi: int | None) -> int | None:
    """What the index's offsets count from: the 'movi' tag, or the file's start (writers
    differ); the one at which the first entry finds its own chunk id, else None."""
    if len(video) == 0:
        return None
    for base in (movi, 0):
        if base is None:
            continue
        handle.seek(base + int(video["offset"][0]))
        if handle.read(4) == bytes(video["id"][0]):
            return base
    return None


def chunks_in_place(path: Path, index: AviIndex) -> bool:
    """Whether every packet of `index` starts with its chunk's header (this stream's id, the
    index's size) and ends within the file: the index can be trusted to find each frame."""
    if index.positions is None:
        return False
    ends = index.positions + index.sizes
    if len(ends) and int(ends.max()) > path.stat().st_size:
        return False
    with path.open("rb", buffering=0) as handle:
        for position, size in zip(index.positions.tolist(), index.sizes.tolist(), strict=True):
            head = os.pread(handle.fileno(), _CHUNK_HEADER, position - _CHUNK_HEADER)
            if head[:2] != index.stream or head[4:] != struct.pack("<I", size):
                return False
    return True


class FrameStream:
    """Frames read one at a time into buffers the caller owns (`read_into`); closed on exit."""

    path: Path
    frame_shape: tuple[int, ...]

    def read_into(self, frame: np.ndarray) -> bool:
        """Fill `frame` (C-contiguous uint8 of `frame_shape`); False after the last frame."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in an array of its own (for callers that keep them); closes the stream."""
        try:
            while self.read_into(frame := np.empty(self.frame_shape, np.uint8)):
                yield frame
        finally:
            self.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawGrayStream(FrameStream):
    """A GREY video's frames read straight from the file into buffers the caller owns.

    Each frame's chunk is read whole with its 8-byte header, whose id and size must be the
    index's: a frame that is not where the index says is a MiniscopeFormatError (the frames
    before it were read), never pixels of something else. With `nwb_order` frames come as
    (width, height), transposed by numpy while copied into the caller's buffer.
    """

    def __init__(
        self, path: Path, index: AviIndex, size: tuple[int, int], nwb_order: bool, first: int = 0
    ) -> None:
        if index.positions is None:
            raise ValueError(f"{path}: its index does not say where its frames lie")
        width, height = size
        self.path, self.index, self.next = path, index, first
        self.frame_shape = (width, height) if nwb_order else (height, width)
        self._file = path.open("rb", buffering=0)
        self._chunk = np.empty(_CHUNK_HEADER + width * height, np.uint8)
        self._header = struct.pack("<I", width * height)
        pixels = self._chunk[_CHUNK_HEADER:].reshape(height, width)
        self._pixels = pixels.T if nwb_order else pixels

    def read_into(self, frame: np.ndarray) -> bool:
        if self.next >= self.index.n_frames:
            return False
        assert self.index.positions is not None
        at = int(self.index.positions[self.next]) - _CHUNK_HEADER
        self._file.seek(at)
        got = self._file.readinto(self._chunk.data)
        head = bytes(self._chunk[:_CHUNK_HEADER])
        if got != len(self._chunk) or head[:2] != self.index.stream or head[4:] != self._header:
            raise MiniscopeFormatError(
                self.path, f"frame {self.next} is not where the AVI's index says (byte {at})"
            )
        np.copyto(frame, self._pixels)
        self.next += 1
        return True

    def close(self) -> None:
        self._file.close()
