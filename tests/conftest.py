"""Shared fixtures: small synthetic sessions written with the real codecs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from support import SMALL_CAMERA, SMALL_SCOPE, acquisition

from miniscope_core.testing.synthetic import AcquisitionTruth, write_session

# The tiers that need Dagster (the optional `dagster` extra) are left out in a library-only
# install, so that `pytest` runs the library's tests alone.
collect_ignore = [] if importlib.util.find_spec("dagster") else ["assets", "cluster", "e2e"]


@pytest.fixture
def two_acquisitions(tmp_path: Path) -> tuple[Path, list[AcquisitionTruth]]:
    """Two acquisitions 180 s apart, FFV1 scope split in 3 files, MJPG camera with a gap."""
    root = tmp_path / "session"
    truths = write_session(root, n_acquisitions=2, scope=SMALL_SCOPE, cameras=[SMALL_CAMERA])
    return root, truths


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """Two animals side by side, one session each (the layout that used to be merged)."""
    root = tmp_path / "cohort"
    acquisition(root / "mouseA" / "2021_05_14" / "11_34_45", "mouseA", 0, seed=1)
    acquisition(root / "mouseA" / "2021_05_14" / "11_40_45", "mouseA", 6, seed=2)
    acquisition(root / "mouseB" / "2021_05_14" / "11_37_45", "mouseB", 3, seed=3)
    return root


# Tiers that mostly wait on servers (daemon ticks, a worker's requeue), longest first: run first,
# under pytest-xdist (`--dist loadfile --no-loadscope-reorder`) their waits overlap the other
# tiers' CPU-bound tests instead of ending the run alone.
SERVER_BOUND_FIRST = ("cluster/test_cluster_celery.py", "cluster/test_cluster_slurm.py", "e2e/")


def _server_bound_rank(item: pytest.Item) -> int:
    path = item.path.as_posix()
    ranks = (rank for rank, tier in enumerate(SERVER_BOUND_FIRST) if f"/tests/{tier}" in path)
    return next(ranks, len(SERVER_BOUND_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_server_bound_rank)  # stable: each file's own order is kept
