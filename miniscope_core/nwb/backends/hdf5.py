"""Write a Layout to disk: pynwb writes the structure, then each empty dataset is filled.

The caller chooses the path (a temporary name it renames once the file is complete and
verified). What went into each image series is recorded on the way, so that the file can be
read back and compared with it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
from pynwb import NWBHDF5IO

from ...encode.chunks import ChunkWriter, copy_chunks
from ..base import Fill, Layout
from .base import Filler, Shortfall, WrittenSeries, written_series


def copy_fill(store: ChunkWriter, fill: Fill) -> int:
    """Fill from the fill's chunk file, byte for byte (the staged path)."""
    copy_chunks(fill.video, store, fill.offset, fill.n_frames)
    return fill.n_frames


def write_nwb(
    layout: Layout, path: Path, fill: Filler = copy_fill, backend: str = "hdf5"
) -> list[WrittenSeries] | Shortfall:
    """Write `layout` to `path`, each empty dataset completed by `fill`; what each series got.

    Stops at the first part that `fill` leaves short (a video that decodes to fewer frames than
    its packets promised), since the layout was sized for the promise. `backend` "zarr" writes
    an NWB Zarr directory instead (`zarr_output`, an optional extra).
    """
    if backend == "zarr":
        from .zarr import write_nwb_zarr

        return write_nwb_zarr(layout, path, fill)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", module="pynwb")
        with NWBHDF5IO(path, mode="w") as io:
            io.write(layout.nwbfile)
    with h5py.File(path, "r+") as h5:
        stores: dict[str, ChunkWriter] = {}
        for part in layout.fills:
            store = stores.setdefault(part.dataset_path, ChunkWriter(h5[part.dataset_path]))
            written = fill(store, part)
            if written < part.n_frames:
                return Shortfall(part.video.source, part.n_frames, written)
        boundary = {name: _boundary_chunks(store.dataset) for name, store in stores.items()}
    return written_series(layout.fills, boundary)


def _boundary_chunks(dataset: h5py.Dataset) -> dict[int, bytes]:
    """The stored bytes of the series' first and last chunks (by their first rows)."""
    per_chunk, zeros = dataset.chunks[0], (0,) * (dataset.ndim - 1)
    firsts = {0, (dataset.shape[0] - 1) // per_chunk * per_chunk} if dataset.shape[0] else set()
    stored = {row for row in firsts if _has_chunk(dataset, (row, *zeros))}
    return {row: dataset.id.read_direct_chunk((row, *zeros))[1] for row in stored}


def _has_chunk(dataset: h5py.Dataset, coord: tuple[int, ...]) -> bool:
    """Whether a chunk was stored there (h5py raises MemoryError reading one that was not)."""
    return dataset.id.get_chunk_info_by_coord(coord).byte_offset is not None
