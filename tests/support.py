"""Helpers shared by the tests: small device specs and reading NWB files back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pynwb import NWBHDF5IO, NWBFile

from miniscope_core.synthetic import CameraSpec, ScopeSpec

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-miniscope"

SMALL_SCOPE = ScopeSpec(
    n_frames=120,
    height=48,
    width=64,
    frames_per_file=50,
    dropped_frames={30: 2},
    zero_quaternion_rows=[0, 1],
)
SMALL_CAMERA = CameraSpec(n_frames=90, height=24, width=32, frames_per_file=40, gaps={20: 1400.0})


@contextmanager
def read_nwb(path: Path) -> Iterator[NWBFile]:
    with NWBHDF5IO(path, "r") as io:
        yield io.read()
