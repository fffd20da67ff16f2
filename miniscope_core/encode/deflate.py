"""Deflate (HDF5 "gzip") compression of one chunk, byte-compatible with HDF5's own filter.

Any deflate encoder produces a zlib stream that every HDF5 reader inflates, so the encoder is
free to choose. ISA-L (`isal`) deflates Miniscope frames several times faster than zlib and
slightly smaller (see bench/README.md); stdlib zlib is kept for bit-for-bit comparisons with
tools that use h5py's filter.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib

ENGINES: dict[str, tuple[Callable[[memoryview, int], bytes], range]] = {
    "isal": (isal_zlib.compress, range(0, 4)),
    "zlib": (zlib.compress, range(0, 10)),
}
DEFAULT_ENGINE = "isal"
DEFAULT_LEVEL = 2


@dataclass(frozen=True)
class Deflater:
    """A deflate engine at a fixed level; callable from many threads (both release the GIL)."""

    engine: str = DEFAULT_ENGINE
    level: int = DEFAULT_LEVEL

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(
                f"deflate engine must be one of {sorted(ENGINES)}, not {self.engine!r}"
            )
        levels = ENGINES[self.engine][1]
        if self.level not in levels:
            raise ValueError(
                f"{self.engine} levels are {levels.start}-{levels.stop - 1}, not {self.level}"
            )

    def __call__(self, array: np.ndarray) -> bytes:
        """Deflate a C-contiguous array's bytes (a view, never a copy: `.data`)."""
        compress = ENGINES[self.engine][0]
        return compress(array.data.cast("B"), self.level)
