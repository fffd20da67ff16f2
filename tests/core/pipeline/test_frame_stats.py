"""The statistics of each imaging series come from its frames as they are decoded: straight
into the file, or into chunk files (kept with them, so a reused chunk file keeps them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from support import SMALL_CAMERA, TINY

from miniscope_core import convert_session, discover
from miniscope_core.pipeline import stages
from miniscope_core.quality.stats import BRIGHTNESS_ROW_STRIDE

SCOPE = replace(TINY, n_frames=30, frames_per_file=12)
CAMERA = replace(SMALL_CAMERA, n_frames=8, frames_per_file=4, gaps={})
SERIES = "OnePhotonSeriesMiniscope"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from miniscope_core.testing.synthetic import write_session

    root = tmp_path_factory.mktemp("daq") / "m01" / "2024_01_15"
    write_session(root, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    return root


def _frames(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as nwb:
        return nwb["acquisition"][SERIES]["data"][()]


def _assert_stats_of(summary, frames: np.ndarray) -> None:
    """What `frames` (NWB order: frame, width, height) say, in display order (height, width)."""
    display = frames.transpose(0, 2, 1)
    np.testing.assert_array_equal(summary.max_projection, display.max(axis=0))
    np.testing.assert_allclose(summary.mean_projection, display.mean(axis=0), rtol=1e-6)
    expected = frames[:, ::BRIGHTNESS_ROW_STRIDE].reshape(len(frames), -1).mean(axis=1)
    np.testing.assert_allclose(summary.brightness, expected)
    assert summary.frames_seen == len(frames) == 60
    for index, sample in zip(summary.sample_indices, summary.samples, strict=True):
        np.testing.assert_array_equal(sample, display[index])


def test_decoded_straight_into_the_file(session: Path, tmp_path: Path, monkeypatch) -> None:
    seen = {}
    real = stages.FrameQuality.summaries

    def keep(self):  # the statistics the conversion gathered, as it hands them on
        seen.update(real(self))
        return seen

    monkeypatch.setattr(stages.FrameQuality, "summaries", keep)
    out = tmp_path / "direct.nwb"
    convert_session(session, out)
    assert set(seen) == {SERIES}  # the linked camera has no frames in the file
    _assert_stats_of(seen[SERIES], _frames(out))


def test_through_chunk_files_and_reused(session: Path, tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    convert_session(session, tmp_path / "a.nwb", work_dir=work)
    chunk_files = sorted(work.rglob("Miniscope/*.h5"))
    assert chunk_files and all("qc" in h5py.File(f, "r") for f in chunk_files)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a current chunk file was decoded again")

    monkeypatch.setattr(stages, "encode_video", no_decoding)
    again = stages.encode_videos(discover(session), work)
    assert {v.path for v in again.values() if v.path.parent.name == "Miniscope"} == set(chunk_files)
    # the statistics put together from the chunk files are those of the file's frames
    videos = stages.encode_videos(discover(session), work)
    done = stages.assemble(discover(session), videos, tmp_path / "b.nwb")
    _assert_stats_of(done.frame_stats[SERIES], _frames(tmp_path / "b.nwb"))
