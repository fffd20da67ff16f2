"""Helpers shared by the tests: small device specs and reading NWB files back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from pynwb import NWBHDF5IO, NWBFile

from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    CameraSpec,
    ScopeSpec,
    write_acquisition,
)

# Real DAQ recordings from other labs, in the shared/ folder beside the repository.
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-miniscope"


def real_data(relative: str = "") -> Path:
    """A path in REAL_DATA. Missing, it skips the test (or module) locally but fails in CI,
    where shared/ is always laid out: a silent skip there would hide lost coverage."""
    path = REAL_DATA / relative
    if not path.exists():
        reason = f"real Miniscope data missing: {path}"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason} (CI must have shared/real-miniscope)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return path


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


TINY = ScopeSpec(n_frames=12, height=16, width=24, frames_per_file=12)


def acquisition(folder: Path, animal: str = "m01", minutes: int = 0, seed: int = 0) -> Path:
    """A tiny scope-only acquisition of `animal`, starting `minutes` after the default start."""
    spec = AcquisitionSpec(
        start=DEFAULT_START + timedelta(minutes=minutes),
        scopes=[replace(TINY, seed=seed)],
        cameras=[],
        animal=animal,
    )
    return write_acquisition(folder, spec).folder
