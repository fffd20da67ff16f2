"""Decode Miniscope and behaviour-camera AVIs with the ffmpeg that imageio-ffmpeg bundles.

Frame counts come from decoding the stream itself: the AVI header of an unfinished file says 0,
and its last packet may be truncated, so only frames that decode are counted.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from .errors import MiniscopeFormatError


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


def count_frames(path: Path) -> int:
    """Frames that decode (0 for an empty file), without piping pixels into Python."""
    if path.stat().st_size == 0:
        return 0
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0", "-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    counts = re.findall(r"^frame=(\d+)$", result.stdout, flags=re.MULTILINE)
    if not counts:
        raise MiniscopeFormatError(path, f"cannot be decoded: {_last_line(result.stderr)}")
    return int(counts[-1])
