"""Decode Miniscope and behaviour-camera AVIs with the ffmpeg that imageio-ffmpeg bundles.

Frame counts come from decoding the stream itself: the AVI header of an unfinished file says 0,
and its last packet may be truncated, so only frames that decode are counted.
"""

from __future__ import annotations

import re
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue

import imageio_ffmpeg
import numpy as np

from .errors import MiniscopeFormatError

_UNFINISHED_SIZES = {0, 0xFFFFFFFF}  # RIFF sizes an interrupted AVI writer leaves
_END = object()  # end of a read-ahead stream
READ_AHEAD = 8  # decoded frames buffered ahead of the consumer
_HEADER_BYTES = 65536  # the AVI header list, with its stream format, sits at the start


@dataclass(frozen=True)
class VideoStream:
    """A decoding video: its frame size and a frame iterator of (height, width[, 3]) uint8."""

    path: Path
    width: int
    height: int
    codec: str
    frames: Iterator[np.ndarray]


def open_video(path: Path, color: bool = False) -> VideoStream:
    """Start decoding `path` as 8-bit gray (Miniscopes) or RGB (behaviour cameras)."""
    pix_fmt, channels = ("rgb24", 3) if color else ("gray", 1)
    reader = imageio_ffmpeg.read_frames(
        str(path), pix_fmt=pix_fmt, bits_per_pixel=8 * channels, input_params=["-nostdin"]
    )
    try:
        info = next(reader)
    except (OSError, RuntimeError, StopIteration) as error:
        reader.close()
        raise MiniscopeFormatError(path, f"cannot be decoded: {_last_line(error)}") from error
    width, height = info["size"]
    shape = (height, width, channels) if color else (height, width)
    return VideoStream(
        path=path,
        width=width,
        height=height,
        codec=str(info.get("codec", "unknown")),
        frames=_read_ahead(_frames(reader, shape, path)),
    )


def _frames(reader: Iterator[bytes], shape: tuple[int, ...], path: Path) -> Iterator[np.ndarray]:
    try:
        for buffer in reader:
            yield np.frombuffer(buffer, dtype=np.uint8).reshape(shape)
    except RuntimeError as error:
        raise MiniscopeFormatError(path, f"decoding failed: {_last_line(error)}") from error
    finally:
        reader.close()


def _read_ahead(frames: Iterator[np.ndarray], depth: int = READ_AHEAD) -> Iterator[np.ndarray]:
    """`frames`, pulled from ffmpeg's pipe by a thread while the consumer works.

    The pipe holds less than one frame, so without this ffmpeg stops decoding whenever the
    consumer is busy (compressing, writing chunks); `depth` frames bound the memory it takes.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for frame in frames:
                if not _offer(queue, frame, stop):
                    return
            _offer(queue, _END, stop)
        except MiniscopeFormatError as error:
            _offer(queue, error, stop)
        finally:
            frames.close()

    thread = threading.Thread(target=pump, name="ffmpeg-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, MiniscopeFormatError):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _offer(queue: Queue[object], item: object, stop: threading.Event) -> bool:
    """Put `item` unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False


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


def avi_frame_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the AVI's video format header, without starting a decoder."""
    with path.open("rb") as handle:
        header = handle.read(_HEADER_BYTES)
    at = header.find(b"strf")
    if header[:4] != b"RIFF" or at < 0 or len(header) < at + 20:
        return None
    width, height = struct.unpack("<ii", header[at + 12 : at + 20])
    return (width, abs(height)) if width > 0 and height else None


def count_frames(path: Path) -> int:
    """Frames in a video (0 for an empty file), without piping pixels into Python.

    A finalised AVI holds one packet per frame, so its packets are counted without decoding
    (fast); an unfinished one may end in a truncated packet, so it is decoded to count.
    """
    if path.stat().st_size == 0:
        return 0
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0"] + (["-c", "copy"] if avi_finalised(path) else [])
    command += ["-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    counts = re.findall(r"^frame=(\d+)$", result.stdout, flags=re.MULTILINE)
    if not counts:
        raise MiniscopeFormatError(path, f"cannot be decoded: {_last_line(result.stderr)}")
    return int(counts[-1])
