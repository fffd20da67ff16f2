"""How to convert: `ConversionOptions`, the one declaration of each choice and its default."""

from __future__ import annotations

from dataclasses import dataclass

from .encode.deflate import DEFAULT_ENGINE, DEFAULT_LEVEL, Deflater
from .nwb.backends.support import BACKENDS, DEFAULT_BACKEND
from .nwb.naming import Naming
from .timing.sync import NewTimestamps, TimeAlignment

STUB_FRAMES = 100  # per device and acquisition: enough to check metadata and layout in seconds


@dataclass(frozen=True)
class ConversionOptions:
    """How to convert; the defaults are what most labs want."""

    per_acquisition: bool = False
    strict: bool = False
    compression_level: int = DEFAULT_LEVEL
    deflate_engine: str = DEFAULT_ENGINE
    embed_cameras: bool = False
    workers: int | None = None  # compression threads; None: all cores; at least one per decoder
    verify: bool = True  # read the file back before it takes its final name
    stub: bool = False  # only the first STUB_FRAMES frames of each device and acquisition
    # sync pairs to another clock; None: the session's own sync.csv if it has one (sync.py)
    alignment: TimeAlignment | NewTimestamps | None = None
    start_offset: float = 0.0  # seconds added to every time, after the pairs
    neuroconv_names: bool = False  # name objects as NeuroConv does (nwb/naming.py)
    backend: str = DEFAULT_BACKEND  # "hdf5" (a .nwb file) or "zarr" (a .nwb.zarr directory)

    def __post_init__(self) -> None:
        Deflater(self.deflate_engine, self.compression_level)  # a clear ValueError, early
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")

    @property
    def deflater(self) -> Deflater:
        return Deflater(self.deflate_engine, self.compression_level)

    @property
    def naming(self) -> Naming:
        return Naming(self.neuroconv_names, self.per_acquisition)
