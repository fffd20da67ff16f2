"""Decode Miniscope and behaviour-camera AVIs with the ffmpeg that imageio-ffmpeg bundles.

Frame counts come from decoding the stream itself: the AVI header of an unfinished file says 0,
and its last packet may be truncated, so only frames that decode are counted.

On two cores every millisecond of CPU that Python spends on a frame is taken from the decoder,
so frames go from ffmpeg's pipe straight into buffers the caller owns (`VideoStream.read_into`),
already in NWB's (width, height) order when asked: numpy neither allocates nor reorders them.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import re
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, cast

import imageio_ffmpeg
import numpy as np

from ..errors import MiniscopeFormatError

_UNFINISHED_SIZES = {0, 0xFFFFFFFF}  # RIFF sizes an interrupted AVI writer leaves
_HEADER_BYTES = 65536  # the AVI header list, with its stream format, sits at the start
_PIPE_BYTES = 1 << 20  # Linux's default limit: ffmpeg can run ~3 frames ahead of its reader
_STOP_SECONDS = 5.0  # for ffmpeg to exit once its pipe is closed
_IDX1_ENTRY = np.dtype([("id", "S4"), ("flags", "<u4"), ("offset", "<u4"), ("size", "<u4")])
_KEYFRAME = 0x10  # AVIIF_KEYFRAME in an idx1 entry's flags


@dataclass(frozen=True)
class VideoInfo:
    """One source video: its decodable frames and their size, without its pixels.

    The file's size and mtime say later whether anything made from it is still current.
    """

    source: Path
    size: int
    mtime_ns: int
    n_frames: int
    frame_shape: tuple[int, ...]  # as NWB stores a frame, (width, height[, 3]); () if not needed
    decode_error: str


class VideoStream:
    """One video being decoded by ffmpeg into raw 8-bit gray (Miniscopes) or RGB (cameras).

    Frames are (height, width[, 3]) as decoded, or (width, height[, 3]) with `nwb_order`, in
    which case ffmpeg transposes them. Decoding starts at frame `first`, which must be a keyframe
    of the AVI's index (`avi_index`), and uses `threads` decoder threads (ffmpeg's choice if
    None). Use as a context manager, or `close()` it: ffmpeg is stopped if the frames are not
    all read.
    """

    def __init__(
        self,
        path: Path,
        color: bool = False,
        nwb_order: bool = False,
        first: int = 0,
        threads: int | None = None,
    ) -> None:
        width, height = frame_size(path)
        channels = (3,) if color else ()
        self.path = path
        self.frame_shape = (width, height, *channels) if nwb_order else (height, width, *channels)
        start = _seek(path, first) if first else []
        threading = ["-threads", str(threads), "-filter_threads", str(threads)] if threads else []
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close): never blocks ffmpeg
        self._process = subprocess.Popen(
            _decode_command(path, color, nwb_order, threading + start),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            bufsize=0,
            process_group=0,  # Ctrl-C reaches Python, which stops ffmpeg itself
        )
        self._pipe = cast(io.FileIO, self._process.stdout)  # unbuffered (bufsize=0): readinto
        _widen(self._pipe)

    def read_into(self, frame: np.ndarray) -> bool:
        """Fill `frame` (C-contiguous uint8 of `frame_shape`) with the next frame.

        False at the end of the video; MiniscopeFormatError if ffmpeg failed, after the frames
        it decoded before failing have been read.
        """
        view = frame.data.cast("B")
        filled = 0
        while filled < len(view):
            got = self._pipe.readinto(view[filled:])
            if not got:
                self._end(filled)
                return False
            filled += got
        return True

    @property
    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in an array of its own (for callers that keep them); closes the stream."""
        try:
            while self.read_into(frame := np.empty(self.frame_shape, np.uint8)):
                yield frame
        finally:
            self.close()

    def _end(self, stray_bytes: int) -> None:
        """At the end of the pipe: raise if ffmpeg failed or stopped inside a frame."""
        if self._process.wait() != 0 or stray_bytes:
            raise MiniscopeFormatError(self.path, f"decoding failed: {self._last_log_line()}")

    def _last_log_line(self) -> str:
        self._log.seek(0)
        return _last_line(self._log.read().decode(errors="replace"))

    def close(self) -> None:
        """Stop ffmpeg if it is still decoding, and release its pipe and log."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(_STOP_SECONDS)
        self._pipe.close()
        self._log.close()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(
    path: Path,
    color: bool = False,
    nwb_order: bool = False,
    first: int = 0,
    threads: int | None = None,
) -> VideoStream:
    """Start decoding `path` (see `VideoStream`)."""
    return VideoStream(path, color, nwb_order, first, threads)


def _decode_command(path: Path, color: bool, nwb_order: bool, before: list[str]) -> list[str]:
    """ffmpeg writing every decoded frame, and nothing else, as raw pixels to its stdout.

    `before` goes before the input (decoder and seek options). `-fps_mode passthrough` keeps one
    output frame per decoded frame (no duplicate ever fills a timestamp gap);
    `transpose=cclock_flip` is the plain transpose (x, y) -> (y, x). A palette-indexed 8-bit
    gray frame (the legacy V3 software's 'DIB ' videos) is read through RGB: ffmpeg's direct
    palette-to-gray conversion is off by one for some values, the red channel is exact.
    """
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", *before, "-i", str(path)]
    command += ["-map", "0:v:0", "-fps_mode", "passthrough"]
    filters = ["format=rgb24", "extractplanes=r"] if not color and avi_palettised(path) else []
    filters += ["transpose=cclock_flip"] if nwb_order else []
    command += ["-vf", ",".join(filters)] if filters else []
    return command + ["-pix_fmt", "rgb24" if color else "gray", "-f", "rawvideo", "pipe:1"]


def _seek(path: Path, first: int) -> list[str]:
    """ffmpeg input options that start decoding exactly at keyframe `first`.

    ffmpeg rounds the time to the nearest frame and the demuxer jumps to the last keyframe of
    the index at or before it, so the keyframe's own time (to the microsecond) lands on it;
    `-noaccurate_seek` outputs from there without dropping frames.
    """
    index = avi_index(path)
    if index is None or not 0 < first < index.n_frames or not index.keyframes[first]:
        raise ValueError(f"{path}: frame {first} is not a keyframe of its AVI index")
    return ["-noaccurate_seek", "-ss", f"{float(first * index.frame_seconds):.6f}"]


def _widen(pipe: IO[bytes]) -> None:
    """Let ffmpeg write ahead of its reader (a pipe holds 64 kB, a sixth of a frame, by default)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or a lower limit: only slower
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _last_line(error: BaseException | str) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else "ffmpeg gave no reason"


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


def frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of the decoded frames: the AVI header's, else what ffmpeg reports."""
    size = avi_frame_size(path)
    if size is not None:
        return size
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)]
    log = subprocess.run(command, capture_output=True, text=True, check=False).stderr
    found = re.search(r"Stream #\S+.*?: Video: .*?, (\d+)x(\d+)", log)
    if found is None:
        raise MiniscopeFormatError(path, f"cannot be decoded: {_last_line(log)}")
    return int(found[1]), int(found[2])


def count_frames(path: Path) -> int:
    """Frames in a video (0 for an empty file), without piping pixels into Python.

    A finalised AVI holds one packet per frame, so its packets are counted without decoding:
    read from its idx1 index when it has a plain one (microseconds), else by ffmpeg. An
    unfinished AVI may end in a truncated packet, so it is decoded to count.
    """
    if path.stat().st_size == 0:
        return 0
    finalised = avi_finalised(path)
    index = avi_index(path) if finalised else None
    if index is not None:
        return index.n_frames
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0"] + (["-c", "copy"] if finalised else [])
    command += ["-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    counts = re.findall(r"^frame=(\d+)$", result.stdout, flags=re.MULTILINE)
    if not counts:
        raise MiniscopeFormatError(path, f"cannot be decoded: {_last_line(result.stderr)}")
    return int(counts[-1])


@dataclass(frozen=True)
class AviIndex:
    """The video packets a finalised AVI's idx1 index lists, as ffmpeg reads them: which are
    keyframes (where decoding may start) and how long a frame lasts."""

    keyframes: np.ndarray  # one bool per packet
    frame_seconds: Fraction

    @property
    def n_frames(self) -> int:
        return len(self.keyframes)


def avi_index(path: Path) -> AviIndex | None:
    """The idx1 index of the first video stream, or None when the file is not that simple.

    Not simple: an OpenDML index or a second RIFF (ffmpeg reads those instead of idx1), no idx1,
    a zero-size entry, a stream that does not start at time 0. ffmpeg copes with those itself.
    """
    with path.open("rb") as handle:
        stream, at, end = None, 12, path.stat().st_size
        while at + 8 <= end:
            handle.seek(at)
            kind, size = struct.unpack("<4sI", handle.read(8))
            if kind == b"LIST" and handle.read(4) == b"hdrl":
                stream = _video_stream(handle.read(size - 4))
            elif kind == b"idx1" and stream is not None:
                return _read_index(handle.read(size), *stream)
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


def _read_index(index: bytes, stream: bytes, frame_seconds: Fraction) -> AviIndex | None:
    """`stream`'s video packets (`NNdc`/`NNdb`) in an idx1 index."""
    entries = np.frombuffer(index, dtype=_IDX1_ENTRY, count=len(index) // _IDX1_ENTRY.itemsize)
    video = entries[(entries["id"] == stream + b"dc") | (entries["id"] == stream + b"db")]
    if np.any(video["size"] == 0):
        return None
    return AviIndex((video["flags"] & _KEYFRAME) != 0, frame_seconds)
