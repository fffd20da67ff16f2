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
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, cast

import imageio_ffmpeg
import numpy as np

from ..errors import MiniscopeFormatError
from .avi import (
    AviIndex,
    FrameStream,
    RawGrayStream,
    avi_finalised,
    avi_frame_size,
    avi_gray8,
    avi_index,
    avi_palettised,
    chunks_in_place,
)

_PIPE_BYTES = 1 << 20  # Linux's default limit: ffmpeg can run ~3 frames ahead of its reader
_STOP_SECONDS = 5.0  # for ffmpeg to exit once its pipe is closed


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


class VideoStream(FrameStream):
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


def open_video(
    path: Path,
    color: bool = False,
    nwb_order: bool = False,
    first: int = 0,
    threads: int | None = None,
) -> FrameStream:
    """Start decoding `path` (see `VideoStream`); a gray video without compression is read
    straight from the file instead (`RawGrayStream`), once its first frame has been found to be
    the same pixels either way."""
    if not color:
        stat = path.stat()
        raw = _raw_gray(path, stat.st_size, stat.st_mtime_ns)
        if raw is not None:
            return RawGrayStream(path, *raw, nwb_order, first)
    return VideoStream(path, color, nwb_order, first, threads)


@lru_cache(maxsize=256)
def _raw_gray(path: Path, size: int, mtime_ns: int) -> tuple[AviIndex, tuple[int, int]] | None:
    """The index and (width, height) of a GREY video whose frames read straight from the file
    are ffmpeg's; None for any other video (checked once per file version: `size` and
    `mtime_ns` key the cache).

    Every frame's chunk must be where the index says (a damaged one sends the whole video
    through ffmpeg, as before), and the first frame read both ways must be the same pixels: a
    row order, row padding or offset convention of some other writer would differ, and that
    video then goes through ffmpeg too.
    """
    dims = avi_frame_size(path)
    if dims is None or not avi_gray8(path) or not avi_finalised(path):
        return None
    index = avi_index(path)
    if index is None or index.positions is None or index.n_frames == 0:
        return None
    if np.any(index.sizes != dims[0] * dims[1]) or not chunks_in_place(path, index):
        return None
    with RawGrayStream(path, index, dims, False) as direct, VideoStream(path) as decoded:
        ours, theirs = (
            np.empty(direct.frame_shape, np.uint8),
            np.empty(direct.frame_shape, np.uint8),
        )
        try:
            same = direct.read_into(ours) and decoded.read_into(theirs)
        except MiniscopeFormatError:
            return None
        return (index, dims) if same and np.array_equal(ours, theirs) else None


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
