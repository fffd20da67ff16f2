"""Write a Layout to disk: pynwb writes the structure, then each empty dataset is filled.

The caller chooses the path (a temporary name it renames once the file is complete and
verified). What went into each image series is recorded on the way, so that the file can be
read back and compared with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
from pynwb import NWBHDF5IO

from .chunks import copy_chunks
from .nwb.base import Fill, Layout
from .validate import WrittenSeries

Filler = Callable[[h5py.Dataset, Fill], int]  # frames it wrote into the part


@dataclass(frozen=True)
class Shortfall:
    """A part got fewer frames than its video promised: the file is incomplete, not to be kept."""

    video: Path
    promised: int
    written: int


def copy_fill(dataset: h5py.Dataset, fill: Fill) -> int:
    """Fill from the fill's chunk file, byte for byte (the staged path)."""
    copy_chunks(fill.video, dataset, fill.offset, fill.n_frames)
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
        from .zarr_output import write_nwb_zarr

        return write_nwb_zarr(layout, path, fill)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", module="pynwb")
        with NWBHDF5IO(path, mode="w") as io:
            io.write(layout.nwbfile)
    boundary: dict[str, dict[int, bytes]] = {}
    with h5py.File(path, "r+") as h5:
        for part in layout.fills:
            dataset = h5[part.dataset_path]
            written = fill(dataset, part)
            if written < part.n_frames:
                return Shortfall(part.video.source, part.n_frames, written)
            boundary.setdefault(part.dataset_path, {}).update(_boundary_chunks(dataset, part))
    return written_series(layout.fills, boundary)


def _boundary_chunks(dataset: h5py.Dataset, part: Fill) -> dict[int, bytes]:
    """The stored bytes of the series' first and last frames, if this part wrote them."""
    rows = {0, dataset.shape[0] - 1} & {part.offset, part.offset + part.n_frames - 1}
    zeros = (0,) * (dataset.ndim - 1)
    stored = {row for row in rows if _has_chunk(dataset, (row, *zeros))}
    return {row: dataset.id.read_direct_chunk((row, *zeros))[1] for row in stored}


def _has_chunk(dataset: h5py.Dataset, coord: tuple[int, ...]) -> bool:
    """Whether a chunk was stored there (h5py raises MemoryError reading one that was not)."""
    return dataset.id.get_chunk_info_by_coord(coord).byte_offset is not None


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
