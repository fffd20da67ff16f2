"""Shared fixtures: small synthetic sessions written with the real codecs."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SMALL_CAMERA, SMALL_SCOPE

from miniscope_core.synthetic import AcquisitionTruth, write_session


@pytest.fixture
def two_acquisitions(tmp_path: Path) -> tuple[Path, list[AcquisitionTruth]]:
    """Two acquisitions 180 s apart, FFV1 scope split in 3 files, MJPG camera with a gap."""
    root = tmp_path / "session"
    truths = write_session(root, n_acquisitions=2, scope=SMALL_SCOPE, cameras=[SMALL_CAMERA])
    return root, truths
