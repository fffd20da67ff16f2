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

import numpy as np

from ...encode.chunks import ChunkWriter
from ..base import Fill

Filler = Callable[[ChunkWriter, Fill], int]  # frames it wrote into the part


@dataclass(frozen=True)
class WrittenSeries:
    """What the writer put in one image series: its frame count, shapes and boundary chunks."""

    path: str  # e.g. "acquisition/OnePhotonSeriesMiniscope"
    n_frames: int
    frame_shapes: tuple[tuple[int, ...], ...]  # of the sources; one, unless something is wrong
    chunks: dict[int, bytes] = field(default_factory=dict)  # first row -> chunk written


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
    """The stored chunk starting at `row` inflates (if `deflated`) to exactly one chunk of
    `data`'s whole frames, and equals what `reader` (the library behind `data`) decodes."""
    try:
        raw = zlib.decompress(chunk) if deflated else chunk
    except zlib.error as error:
        return [f"frame {row} does not inflate ({error})"]
    chunk_shape = tuple(data.chunks)
    chunk_bytes = math.prod(chunk_shape) * data.dtype.itemsize
    if len(raw) != chunk_bytes:
        return [f"frame {row} holds {len(raw)} bytes, a {chunk_shape} chunk is {chunk_bytes}"]
    frames = np.frombuffer(raw, dtype=data.dtype).reshape(chunk_shape)
    rows = min(chunk_shape[0], data.shape[0] - row)
    if not np.array_equal(data[row : row + rows], frames[:rows]):
        return [f"frame {row} reads back differently through {reader}"]
    return []
