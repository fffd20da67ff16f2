"""Fixtures of the quality tests (built in qc_builders.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from qc_builders import one_photon_frames, session_qc

from miniscope_core.quality.model import SessionQC


@pytest.fixture
def make_frames() -> Callable[..., np.ndarray]:
    return one_photon_frames


@pytest.fixture
def qc() -> SessionQC:
    return session_qc()
