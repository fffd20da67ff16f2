"""Small preview images of decoded Miniscope frames, for a glance in a UI or a report.

A max projection of the first frames shows the field of view and the cells that fired. Raw
Miniscope frames use a narrow band of gray levels, so the contrast is stretched between
percentiles before the image is shrunk and encoded as PNG by the ffmpeg that imageio-ffmpeg
bundles (no image library needed).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import imageio_ffmpeg
import numpy as np

from ..errors import MiniscopeFormatError
from .chunks import DATASET

DEFAULT_FRAMES = 200
DEFAULT_SIDE = 128


def max_projection(frames: h5py.Dataset, n_frames: int = DEFAULT_FRAMES) -> np.ndarray:
    """Max over the first `n_frames` of gray (frame, width, height) frames, as (height, width)."""
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected gray frames (frame, width, height), got shape {frames.shape}")
    projection = np.zeros(frames.shape[1:], dtype=np.uint8)
    for index in range(min(n_frames, frames.shape[0])):
        np.maximum(projection, frames[index], out=projection)
    return projection.T


def stretch(image: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Map the `low`..`high` percentile range of gray levels onto 0..255."""
    floor, ceiling = np.percentile(image, [low, high])
    if ceiling <= floor:
        return image.astype(np.uint8)
    scaled = (image.astype(np.float32) - floor) * (255.0 / (ceiling - floor))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray, max_side: int = DEFAULT_SIDE) -> bytes:
    """A gray (height, width) uint8 image as PNG, shrunk so that its longer side is <= max_side."""
    height, width = image.shape
    scale = min(1.0, max_side / max(height, width))
    size = f"{max(1, round(width * scale))}:{max(1, round(height * scale))}"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error"]
    command += ["-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}", "-i", "-"]
    command += ["-vf", f"scale={size}:flags=area", "-frames:v", "1"]
    command += ["-c:v", "png", "-f", "image2pipe", "-"]
    result = subprocess.run(
        command, input=np.ascontiguousarray(image).tobytes(), capture_output=True, check=False
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"ffmpeg could not encode the preview: {result.stderr.decode()[-300:]}")
    return result.stdout


def chunk_file_preview(
    path: Path, n_frames: int = DEFAULT_FRAMES, max_side: int = DEFAULT_SIDE
) -> bytes:
    """PNG of the stretched max projection of the first frames of a gray chunk file."""
    with h5py.File(path, "r") as h5:
        if DATASET not in h5:
            raise MiniscopeFormatError(path, "holds no decoded frames to preview")
        projection = max_projection(h5[DATASET], n_frames)
    return png_bytes(stretch(projection), max_side)
