"""Write a Layout to disk: pynwb writes the structure, then chunks are copied in as bytes.

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
from .nwb_layout import Layout


def write_nwb(layout: Layout, output: Path, on_frames: Callable[[int], None] | None = None) -> Path:
    """Write `layout` to `output` atomically; returns `output`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The file path provided", module="pynwb")
            with NWBHDF5IO(partial, mode="w") as io:
                io.write(layout.nwbfile)
        with h5py.File(partial, "r+") as h5:
            for fill in layout.fills:
                copy_chunks(fill.chunk_file, h5[fill.dataset_path], fill.offset, fill.n_frames)
                if on_frames:
                    on_frames(fill.n_frames)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output
