"""What every backend shares: how a part is filled, what each series got, and a frame check.

The writers (`hdf5`, `zarr`) record what they put in each series (`WrittenSeries`), and the
read-back (`verify`) compares the file with it; both inflate a stored chunk the same way.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..base import Fill

Filler = Callable[[h5py.Dataset, Fill], int]  # frames it wrote into the part


@dataclass(frozen=True)
class WrittenSeries:
    """What the writer put in one image series: its frame count, shapes and boundary chunks."""

    path: str  # e.g. "acquisition/OnePhotonSeriesMiniscope"
    n_frames: int
    frame_shapes: tuple[tuple[int, ...], ...]  # of the sources; one, unless something is wrong
    chunks: dict[int, bytes] = field(default_factory=dict)  # row -> deflated bytes written


@dataclass(frozen=True)
class Shortfall:
    """A part got fewer frames than its video promised: the file is incomplete, not to be kept."""

    video: Path
    promised: int
    written: int


def written_series(fills: list[Fill], boundary: dict[str, dict[int, bytes]]) -> list[WrittenSeries]:
    """What each series got: its fills' frames and shapes, and its boundary chunks' bytes."""
    series: dict[str, WrittenSeries] = {}
    for part in fills:
        path = part.dataset_path.removesuffix("/data")
        known = series.get(path)
        shapes = (known.frame_shapes if known else ()) + (
            (part.video.frame_shape,) if part.n_frames else ()
        )
        frames = (known.n_frames if known else 0) + part.n_frames
        chunks = boundary.get(part.dataset_path, {})
        series[path] = WrittenSeries(path, frames, tuple(dict.fromkeys(shapes)), chunks)
    return list(series.values())


def inflate_problems(chunk: bytes, deflated: bool, data: Any, row: int, reader: str) -> list[str]:
    """Frame `row`'s stored chunk inflates (if `deflated`) to exactly one frame of `data`, and
    equals what `reader` (the library behind `data`) decodes for that row."""
    try:
        raw = zlib.decompress(chunk) if deflated else chunk
    except zlib.error as error:
        return [f"frame {row} does not inflate ({error})"]
    frame_bytes = math.prod(data.shape[1:]) * data.dtype.itemsize
    if len(raw) != frame_bytes:
        return [f"frame {row} holds {len(raw)} bytes, a {data.shape[1:]} frame is {frame_bytes}"]
    frame = np.frombuffer(raw, dtype=data.dtype).reshape(data.shape[1:])
    if not np.array_equal(data[row], frame):
        return [f"frame {row} reads back differently through {reader}"]
    return []
