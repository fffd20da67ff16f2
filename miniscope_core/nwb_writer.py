"""Write a Layout to disk: pynwb writes the structure, then each empty dataset is filled.

The file is written under a temporary name and renamed only once complete, so a reader (or the
Dagster UI) never sees a half-written NWB file where a finished one belongs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
from pynwb import NWBHDF5IO

from .chunks import copy_chunks
from .nwb_layout import Fill, Layout

Filler = Callable[[h5py.Dataset, Fill], None]


def copy_fill(dataset: h5py.Dataset, fill: Fill) -> None:
    """Fill from the fill's chunk file, byte for byte (the staged path)."""
    copy_chunks(fill.chunk_file, dataset, fill.offset, fill.n_frames)


def write_nwb(layout: Layout, output: Path, fill: Filler = copy_fill) -> Path:
    """Write `layout` to `output` atomically, each empty dataset completed by `fill`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The file path provided", module="pynwb")
            with NWBHDF5IO(partial, mode="w") as io:
                io.write(layout.nwbfile)
        with h5py.File(partial, "r+") as h5:
            for part in layout.fills:
                fill(h5[part.dataset_path], part)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output
