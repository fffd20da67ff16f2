"""Decode Miniscope and behaviour-camera AVIs with the ffmpeg that imageio-ffmpeg bundles.

Frame counts come from decoding the stream itself: the AVI header of an unfinished file says 0,
and its last packet may be truncated, so only frames that decode are counted.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from .errors import MiniscopeFormatError

_UNFINISHED_SIZES = {0, 0xFFFFFFFF}  # RIFF sizes an interrupted AVI writer leaves


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
        frames=_frames(reader, shape, path),
    )


def _frames(reader: Iterator[bytes], shape: tuple[int, ...], path: Path) -> Iterator[np.ndarray]:
    try:
        for buffer in reader:
            yield np.frombuffer(buffer, dtype=np.uint8).reshape(shape)
    except RuntimeError as error:
        raise MiniscopeFormatError(path, f"decoding failed: {_last_line(error)}") from error
    finally:
        reader.close()


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
