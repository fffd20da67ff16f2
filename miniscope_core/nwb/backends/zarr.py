"""NWB Zarr output (hdmf-zarr): the same layout and the same frames as the HDF5 file.

Codec: numcodecs `Zlib`. A Zlib chunk is a zlib stream, byte for byte what HDF5's deflate
("gzip") filter stores, so the frames deflated once by the converter's threads (ISA-L or zlib,
see `deflate.py`), or copied from the staged chunk files, are stored as they are: nothing is
compressed twice, and Zarr and HDF5 outputs of a session hold the same bytes per frame. Zlib is
in numcodecs' core set, which zarr-python (hence pynwb with hdmf-zarr, nwbinspector and DANDI's
tools) decodes without plugins, and every other Zarr implementation reads zlib; Blosc also
needs no plugin in Python, but elsewhere a native or WebAssembly build of c-blosc, and GZip
adds a header that HDF5 does not write.

pynwb (`NWBZarrIO`) writes the structure, with each image series' pixel array created at its
full shape, the HDF5 file's chunks (whole frames) and no chunk stored; then every chunk is
written to the store under its key, streamed in bounded memory by the same fillers that write
the HDF5 file. The chunk keys use "." between indices, so a store is 4 levels deep
(`acquisition/<series>/data/<k>.0.0`), far within DANDI's limit of 7; hdmf-zarr 0.13 writes
Zarr v2 (zarr-python 2), which has no sharding, so the file count is one per chunk.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pynwb
import zarr
from hdmf.backends.hdf5 import H5DataIO
from hdmf.container import Container
from hdmf.data_utils import AbstractDataChunkIterator, DataChunk
from hdmf_zarr import ZarrDataIO
from hdmf_zarr.nwb import NWBZarrIO
from pynwb.validation import get_cached_namespaces_to_validate

from ...encode.chunks import ChunkWriter
from ...errors import MiniscopeFormatError
from ..base import Layout
from .base import Filler, Shortfall, WrittenSeries, inflate_problems, written_series

CODEC_ID = "zlib"
_H5_GZIP_LEVEL = 4  # h5py's level for compression="gzip" without compression_opts


def codec(level: int) -> numcodecs.abc.Codec:
    """The compressor of every array the converter writes (see the module's docstring)."""
    return numcodecs.Zlib(level=level)


def write_nwb_zarr(layout: Layout, path: Path, fill: Filler) -> list[WrittenSeries] | Shortfall:
    """Write `layout` as an NWB Zarr store at `path` (a new directory); what each series got,
    or the first part `fill` left short (as `write_nwb`)."""
    _as_zarr_data(layout.nwbfile)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", module="pynwb")
        with NWBZarrIO(str(path), mode="w") as io:
            io.write(layout.nwbfile)
    root = zarr.open_group(str(path), mode="r+")
    stores: dict[str, ChunkWriter] = {}
    for part in layout.fills:
        store = stores.get(part.dataset_path)
        if store is None:
            store = stores[part.dataset_path] = ChunkWriter(ZarrFrames(root[part.dataset_path]))
        written = fill(store, part)
        if written < part.n_frames:
            return Shortfall(part.video.source, part.n_frames, written)
    boundary = {name: _boundary_chunks(store.dataset) for name, store in stores.items()}
    return written_series(layout.fills, boundary)


class _NoFrames(AbstractDataChunkIterator):
    """The pixel array's shape, type and chunking for pynwb, and no data: the fill writes it."""

    def __init__(
        self, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: tuple[int, ...]
    ) -> None:
        self._shape, self._dtype, self._chunks = shape, np.dtype(dtype), chunks

    def __iter__(self) -> Iterator[DataChunk]:
        return self

    def __next__(self) -> DataChunk:
        raise StopIteration

    def recommended_chunk_shape(self) -> tuple[int, ...]:
        return self._chunks

    def recommended_data_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def maxshape(self) -> tuple[int, ...]:
        return self._shape


def _as_zarr_data(nwbfile: Any) -> None:
    """Give every dataset the layout wrapped for HDF5 the same chunking and deflate in Zarr.

    Layout parts wrap data in `H5DataIO` (HDF5 is the default backend); a field is re-wrapped
    the way hdmf's own `Container.set_data_io` does it.
    """
    for container in nwbfile.objects.values():
        if not isinstance(container, Container):
            continue
        for name, value in list(container.fields.items()):
            if isinstance(value, H5DataIO):
                container.fields[name] = _zarr_data(value)


def _zarr_data(h5: H5DataIO) -> ZarrDataIO:
    settings = h5.io_settings
    level = settings.get("compression_opts")
    compressor = codec(level if isinstance(level, int) else _H5_GZIP_LEVEL)
    if h5.data is None:  # an empty pixel array, chunked as for HDF5
        empty = _NoFrames(tuple(h5.shape), h5.dtype, tuple(settings["chunks"]))
        return ZarrDataIO(data=empty, chunks=empty.recommended_chunk_shape(),
                          compressor=compressor, fillvalue=0)  # fmt: skip
    return ZarrDataIO(data=h5.data, compressor=compressor)


class ZarrFrames:
    """A Zarr pixel array seen through the two h5py chunk calls the fillers make
    (`id.write_direct_chunk`, `id.read_direct_chunk`, at a chunk's first row)."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.shape: tuple[int, ...] = array.shape
        self.chunks: tuple[int, ...] = array.chunks
        self.dtype = array.dtype
        self.ndim: int = array.ndim
        self.id = self
        prefix = f"{array.path}/" if array.path else ""
        meta = json.loads(array.store[prefix + ".zarray"])
        self._prefix, self._separator = prefix, meta.get("dimension_separator") or "."

    def key(self, row: int) -> str:
        """The store key of frame `row`'s chunk (`acquisition/X/data/7.0.0`)."""
        index = (row // self.chunks[0],) + (0,) * (self.ndim - 1)
        return self._prefix + self._separator.join(map(str, index))

    def write_direct_chunk(self, coord: tuple[int, ...], data: bytes, filter_mask: int = 0) -> None:
        if filter_mask:
            raise ValueError(f"{self.array.name}: a chunk with HDF5 filters skipped cannot be"
                             " stored in Zarr")  # fmt: skip
        self.array.store[self.key(coord[0])] = data

    def read_direct_chunk(self, coord: tuple[int, ...]) -> tuple[int, bytes]:
        return 0, bytes(self.array.store[self.key(coord[0])])

    def has_chunk(self, row: int) -> bool:
        return self.key(row) in self.array.store


def _boundary_chunks(frames: ZarrFrames) -> dict[int, bytes]:
    """The stored bytes of the series' first and last chunks (by their first rows)."""
    per_chunk = frames.chunks[0]
    firsts = {0, (frames.shape[0] - 1) // per_chunk * per_chunk} if frames.shape[0] else set()
    return {row: frames.read_direct_chunk((row,))[1] for row in firsts if frames.has_chunk(row)}


def schema_errors(path: Path) -> list[Any]:
    """pynwb's schema validation of the store, against the namespaces cached in it.

    Through an open `NWBZarrIO`: `pynwb.validate(path=...)` passes HDF5-only arguments that
    hdmf-zarr 0.13 refuses.
    """
    if open_root(path).attrs.get("neurodata_type") != "NWBFile":
        raise MiniscopeFormatError(path, "is a Zarr store but not NWB (no NWBFile at its root)")
    with NWBZarrIO(str(path), mode="r") as io:
        namespaces, manager, _ = get_cached_namespaces_to_validate(io=io)
    with NWBZarrIO(str(path), mode="r", manager=manager) as io:
        return [error for name in namespaces for error in pynwb.validate(io=io, namespace=name)]


def open_root(path: Path) -> zarr.Group:
    """The store's root group, read only."""
    return zarr.open_group(str(path), mode="r")


def chunk_problems(array: zarr.Array, written: WrittenSeries | None) -> list[str]:
    """Whole frames per chunk, every chunk stored, the Zlib codec; the first and last chunks
    inflate to whole frames and equal what was written and what zarr decodes."""
    n_frames, per_chunk = array.shape[0], array.chunks[0]
    if tuple(array.chunks[1:]) != tuple(array.shape[1:]):
        return [f"chunks {array.chunks}, whole frames per chunk expected"]
    expected = math.ceil(n_frames / per_chunk)
    if (stored := int(array.nchunks_initialized)) != expected:  # the others read as 0
        return [f"{stored} of {expected} chunks have data (the others would read as zeros)"]
    problems = []
    for row in sorted({0, (n_frames - 1) // per_chunk * per_chunk} if n_frames else set()):
        problems += _frame_problems(array, row, written.chunks.get(row) if written else None)
    return problems


def _frame_problems(array: zarr.Array, row: int, written: bytes | None) -> list[str]:
    chunk = ZarrFrames(array).read_direct_chunk((row,))[1]
    if written is not None and chunk != written:
        return [f"frame {row} differs from what was written"]
    compressor = array.compressor
    if array.filters or (compressor is not None and compressor.codec_id != CODEC_ID):
        return []  # another writer's codec: leave decoding to zarr
    return inflate_problems(chunk, compressor is not None, array, row, "zarr")
