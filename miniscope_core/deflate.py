"""Deflate (HDF5 "gzip") compression of one chunk, as HDF5's own filter would write it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Deflater:
    """zlib-format deflate at a fixed level; callable from many threads (releases the GIL)."""

    level: int

    def __call__(self, array: np.ndarray) -> bytes:
        return zlib.compress(memoryview(array).cast("B"), self.level)


def deflater(level: int) -> Deflater:
    if not 0 <= level <= 9:
        raise ValueError(f"gzip level must be 0-9, not {level}")
    return Deflater(level)
