"""Deflate (HDF5 "gzip", Zarr "zlib") compression of frames, joinable into chunks of many.

Any deflate encoder produces a zlib stream that every HDF5 reader inflates, so the encoder is
free to choose. ISA-L (`isal`) deflates Miniscope frames several times faster than zlib and
slightly smaller (see bench/README.md); stdlib zlib is the reference encoder.

Each frame is deflated on its own into a zlib stream whose deflate data ends flushed to a byte
boundary, followed by an empty final block and the frame's Adler-32. Such streams join: the
streams of consecutive frames, their deflate data concatenated under one header and trailer,
are one zlib stream of all of them (`join_streams`), so a chunk of several frames is made from
frames deflated in parallel (or copied from a chunk file) by byte copies, never deflated again,
whatever the frame it starts at. Frames are deflated apart anyway: deflate's window is 32 kB.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from isal import isal_zlib

ENGINES: dict[str, tuple[Callable[..., Any], range]] = {  # raw-deflate encoders, levels
    "isal": (isal_zlib.compressobj, range(0, 4)),
    "zlib": (zlib.compressobj, range(0, 10)),
}
_HEADER = b"\x78\x01"  # zlib: deflate with a 32 kB window (the level bits are only a hint)
_LAST = b"\x03\x00"  # an empty final block (fixed Huffman codes)
_TRAILER = len(_LAST) + 4  # and the Adler-32 after it
_ADLER_BASE = 65521
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
        """A C-contiguous array's bytes (a view, never a copy: `.data`) as a joinable stream."""
        data = array.data.cast("B")
        encoder = ENGINES[self.engine][0](self.level, zlib.DEFLATED, -15)
        check = isal_zlib.adler32(data).to_bytes(4, "big")
        return b"".join((_HEADER, encoder.compress(data), encoder.flush(zlib.Z_SYNC_FLUSH),
                         _LAST, check))  # fmt: skip


def join_streams(streams: Sequence[bytes], frame_bytes: int) -> bytes:
    """One zlib stream of the frames of `Deflater` streams, each `frame_bytes` long inflated."""
    if len(streams) == 1:
        return streams[0]
    check = 1  # the Adler-32 of nothing
    for stream in streams:
        check = _adler32_combine(check, int.from_bytes(stream[-4:], "big"), frame_bytes)
    parts = (memoryview(stream)[len(_HEADER) : -_TRAILER] for stream in streams)
    return b"".join((_HEADER, *parts, _LAST, check.to_bytes(4, "big")))


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two pieces from theirs (zlib's adler32_combine, which Python lacks)."""
    rem = second_length % _ADLER_BASE
    low = (first & 0xFFFF) + (second & 0xFFFF) + _ADLER_BASE - 1
    high = (rem * (first & 0xFFFF)) % _ADLER_BASE
    high += (first >> 16) + (second >> 16) + _ADLER_BASE - rem
    return (low % _ADLER_BASE) | ((high % _ADLER_BASE) << 16)
