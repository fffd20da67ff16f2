"""Several frames per chunk: every path (decoded straight in, copied from chunk files, Zarr)
stores the same frames whatever row an acquisition starts at, and the flag reaches the file."""

from __future__ import annotations

import importlib.util

import h5py
import numpy as np
import pytest

from miniscope_core import ConversionOptions, convert_session, verify_nwb
from miniscope_core.cli import main
from miniscope_core.testing import ScopeSpec, write_session

DATA = "acquisition/OnePhotonSeriesMiniscope/data"
ODD = ScopeSpec(n_frames=37, height=24, width=32, frames_per_file=20)  # 2 x 37: joins mid-chunk


@pytest.fixture
def session(tmp_path):
    write_session(tmp_path / "raw", n_acquisitions=2, scope=ODD, cameras=[])
    return tmp_path / "raw"


def _frames(path):
    with h5py.File(path, "r") as h5:
        return h5[DATA].chunks, h5[DATA][:]


def _frames_of(session, path, **options):
    convert_session(session, path, ConversionOptions(report=False, **options))
    return _frames(path)


def test_direct_and_staged_conversions_store_the_same_frames_in_chunks_of_any_size(
    session, tmp_path
):
    _, truth = _frames_of(session, tmp_path / "one.nwb", frames_per_chunk=1)
    direct = tmp_path / "direct.nwb"
    staged = tmp_path / "staged.nwb"
    convert_session(session, direct, ConversionOptions(frames_per_chunk=5, report=False))
    convert_session(session, staged, ConversionOptions(frames_per_chunk=5, report=False),
                    work_dir=tmp_path / "work")  # fmt: skip
    for path in (direct, staged):
        chunks, frames = _frames(path)
        assert chunks == (5, 32, 24) and verify_nwb(path).passed
        np.testing.assert_array_equal(frames, truth)
        with h5py.File(path, "r") as h5:
            assert h5[DATA].id.get_num_chunks() == 15  # 74 frames
    assert main(["convert", str(session), "-o", str(tmp_path / "cli.nwb"), "--quiet",
                 "--no-report", "--frames-per-chunk", "100"]) == 0  # fmt: skip
    assert _frames(tmp_path / "cli.nwb")[0] == (74, 32, 24)  # no longer than the series


@pytest.mark.skipif(importlib.util.find_spec("hdmf_zarr") is None, reason="needs hdmf-zarr")
def test_a_zarr_store_holds_the_same_chunks_as_the_hdf5_file(session, tmp_path):
    import zarr

    chunks, truth = _frames_of(session, tmp_path / "s.nwb", frames_per_chunk=8)
    store = tmp_path / "s.nwb.zarr"
    convert_session(session, store, ConversionOptions(backend="zarr", report=False))
    array = zarr.open_group(str(store), mode="r")[DATA]
    assert array.chunks == chunks and verify_nwb(store).passed
    np.testing.assert_array_equal(array[:], truth)
    names = {p.name for p in (store / DATA).iterdir() if not p.name.startswith(".")}
    assert names == {f"{k}.0.0" for k in range(10)}
    with h5py.File(tmp_path / "s.nwb", "r") as h5:
        assert (store / DATA / "9.0.0").read_bytes() == h5[DATA].id.read_direct_chunk((72, 0, 0))[1]
