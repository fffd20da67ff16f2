"""A frame size that changes within a session: one image series per run of equal size.

Before, the frames of every acquisition went into one dataset shaped after the first, so the
file validated but reading it crashed h5py; now each run of equal size is its own series.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pynwb import validate
from support import SMALL_CAMERA, read_nwb

from miniscope_core import ConversionOptions, convert_session
from miniscope_core.daq.video import open_video
from miniscope_core.errors import MiniscopeWarning
from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    AcquisitionTruth,
    CameraSpec,
    ScopeSpec,
    write_acquisition,
)

# With these sizes in one dataset (the old layout) reading the file crashed h5py.
WIDE = ScopeSpec(n_frames=60, height=96, width=128, frames_per_file=25, dropped_frames={10: 1})
NARROW = replace(WIDE, height=64, width=80, seed=3)
SCOPE = "OnePhotonSeriesMiniscope"
CAMERA = "ImageSeriesBehavCam2"


def _session(
    root: Path, scopes: Sequence[ScopeSpec], cameras: Sequence[CameraSpec] = ()
) -> list[AcquisitionTruth]:
    """Acquisitions 3 minutes apart in `root/HH_MM_SS/`, one scope (and camera) each."""
    truths = []
    for k, scope in enumerate(scopes):
        start = DEFAULT_START + timedelta(minutes=3 * k)
        spec = AcquisitionSpec(
            start=start,
            scopes=[scope],
            cameras=[cameras[k]] if cameras else [],
        )
        truths.append(write_acquisition(root / f"{start:%H_%M_%S}", spec))
    return truths


def _scope_frames(truths: Sequence[AcquisitionTruth]) -> np.ndarray:
    """The generator's frames in NWB's (frame, width, height) order."""
    return np.stack([f.T for t in truths for f in t.devices["Miniscope"].frames()])


def _camera_frames(truths: Sequence[AcquisitionTruth]) -> np.ndarray:
    """Decoded MJPG frames (lossy, so the reference is the decoder's output), NWB order."""
    videos = [v for t in truths for v in t.devices["BehavCam_2"].videos]
    return np.stack([f.swapaxes(0, 1) for v in videos for f in open_video(v, color=True).frames])


def _seconds(nwb, truths: Sequence[AcquisitionTruth], folder: str = "Miniscope") -> np.ndarray:
    start_ms = round(nwb.session_start_time.timestamp() * 1000)
    epoch = [t.msec_since_epoch + t.devices[folder].timestamps_ms for t in truths]
    return (np.concatenate(epoch) - start_ms) / 1000.0


def _label(truth: AcquisitionTruth) -> str:
    return truth.folder.name


@pytest.fixture(scope="module")
def resized(tmp_path_factory) -> tuple[Path, list[AcquisitionTruth], list[str]]:
    """A session whose scope shrinks from 128x96 to 80x64 between its two acquisitions."""
    tmp = tmp_path_factory.mktemp("resized")
    truths = _session(tmp / "s", [WIDE, NARROW])
    out = tmp / "out.nwb"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_session(tmp / "s", out)
    return out, truths, [str(w.message) for w in caught if w.category is MiniscopeWarning]


def test_size_change_splits_the_scope_into_one_series_per_size(resized):
    out, truths, _ = resized
    names = [f"{SCOPE}_{_label(t)}" for t in truths]
    with read_nwb(out) as nwb:
        assert sorted(n for n in nwb.acquisition if n.startswith(SCOPE)) == names
        for name, truth in zip(names, truths, strict=True):
            series = nwb.acquisition[name]
            np.testing.assert_array_equal(series.data[:], _scope_frames([truth]))
            np.testing.assert_array_equal(series.timestamps[:], _seconds(nwb, [truth]))
            assert list(series.dimension[:]) == list(series.data.shape[1:])
            assert series.imaging_plane is nwb.imaging_planes["ImagingPlaneMiniscope"]
            assert f"from acquisitions {_label(truth)};" in series.description
            assert (
                f"frame size changed from 128x96 to 80x64 at acquisition {_label(truths[1])}"
                in series.description
            )
        head = nwb.processing["behavior"]["TimeSeriesMiniscopeHeadOrientationMiniscope"]
        assert len(head.timestamps) == WIDE.n_frames + NARROW.n_frames
    assert validate(path=str(out)) == []


def test_size_change_warning_names_both_acquisitions_and_sizes(resized):
    _, truths, messages = resized
    split = [m for m in messages if "frame size changed" in m]
    assert len(split) == 1
    assert "from 128x96 to 80x64" in split[0]
    assert f"between acquisitions {_label(truths[0])} and {_label(truths[1])}" in split[0]


def test_every_frame_of_split_series_reads_back_in_a_fresh_process(resized):
    """Read with plain h5py in a subprocess: the old bug was a segfault, which must fail this
    test rather than kill the test run."""
    out, truths, _ = resized
    script = (
        "import hashlib, json, sys, h5py\n"
        "found = {}\n"
        "with h5py.File(sys.argv[1], 'r') as f:\n"
        "    for name, series in f['acquisition'].items():\n"
        "        data, digest = series['data'], hashlib.sha1()\n"
        "        for index in range(data.shape[0]):\n"
        "            digest.update(data[index].tobytes())\n"
        "        found[name] = [list(data.shape), digest.hexdigest()]\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"reader exited with {done.returncode}: {done.stderr}"
    expected = {
        f"{SCOPE}_{_label(t)}": [
            list(frames.shape),
            hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest(),
        ]
        for t in truths
        for frames in [_scope_frames([t])]
    }
    assert json.loads(done.stdout) == expected


def test_runs_of_equal_size_share_a_series(tmp_path):
    """A, B at one size and C at another: two series, A+B named after A, then C."""
    third = replace(WIDE, n_frames=40, seed=2)
    truths = _session(tmp_path / "s", [WIDE, third, NARROW])
    out = tmp_path / "out.nwb"
    with pytest.warns(MiniscopeWarning, match=r"frame size changed from 128x96 to 80x64"):
        result = convert_session(tmp_path / "s", out)
    first, last = f"{SCOPE}_{_label(truths[0])}", f"{SCOPE}_{_label(truths[2])}"
    assert result.series_frames == {first: 100, last: 60}
    with read_nwb(out) as nwb:
        both = nwb.acquisition[first]
        np.testing.assert_array_equal(both.data[:], _scope_frames(truths[:2]))
        np.testing.assert_array_equal(both.timestamps[:], _seconds(nwb, truths[:2]))
        assert f"from acquisitions {_label(truths[0])}, {_label(truths[1])};" in both.description
        np.testing.assert_array_equal(nwb.acquisition[last].data[:], _scope_frames(truths[2:]))


def test_unchanged_size_keeps_the_single_series_name(tmp_path, recwarn):
    truths = _session(tmp_path / "s", [WIDE, replace(WIDE, seed=4)])
    out = tmp_path / "out.nwb"
    result = convert_session(tmp_path / "s", out)
    assert result.series_frames == {SCOPE: 120}
    assert not [w for w in recwarn if "frame size changed" in str(w.message)]
    with read_nwb(out) as nwb:
        np.testing.assert_array_equal(nwb.acquisition[SCOPE].data[:], _scope_frames(truths))


def test_per_acquisition_series_are_not_split_further(tmp_path, recwarn):
    truths = _session(tmp_path / "s", [WIDE, NARROW])
    out = tmp_path / "out.nwb"
    result = convert_session(tmp_path / "s", out, ConversionOptions(per_acquisition=True))
    assert result.series_frames == {f"{SCOPE}_{_label(t)}": 60 for t in truths}
    assert not [w for w in recwarn if "frame size changed" in str(w.message)]


def test_embedded_camera_size_change_splits_its_series(tmp_path):
    small = replace(SMALL_CAMERA, n_frames=50, gaps={})
    cameras = [small, replace(small, height=32, width=48, seed=6)]
    truths = _session(tmp_path / "s", [WIDE, replace(WIDE, seed=4)], cameras)
    out = tmp_path / "out.nwb"
    with pytest.warns(MiniscopeWarning) as caught:
        result = convert_session(tmp_path / "s", out, ConversionOptions(embed_cameras=True))
    names = [f"{CAMERA}_{_label(t)}" for t in truths]
    assert result.series_frames == {SCOPE: 120, names[0]: 50, names[1]: 50}
    split = [str(w.message) for w in caught if "frame size changed" in str(w.message)]
    assert len(split) == 1 and "'BehavCam 2'" in split[0] and "from 32x24 to 48x32" in split[0]
    with read_nwb(out) as nwb:
        for name, truth in zip(names, truths, strict=True):
            series = nwb.acquisition[name]
            np.testing.assert_array_equal(series.data[:], _camera_frames([truth]))
            np.testing.assert_array_equal(
                series.timestamps[:], _seconds(nwb, [truth], "BehavCam_2")
            )
    assert validate(path=str(out)) == []


def test_linked_camera_keeps_one_series_whatever_the_size(tmp_path, recwarn):
    """External files carry their own size, so a linked camera needs no split."""
    small = replace(SMALL_CAMERA, n_frames=50, gaps={})
    cameras = [small, replace(small, height=32, width=48, seed=6)]
    truths = _session(tmp_path / "s", [WIDE, replace(WIDE, seed=4)], cameras)
    out = tmp_path / "out.nwb"
    convert_session(tmp_path / "s", out)
    assert not [w for w in recwarn if "frame size changed" in str(w.message)]
    with read_nwb(out) as nwb:
        series = nwb.acquisition[CAMERA]
        videos = [v for t in truths for v in t.devices["BehavCam_2"].videos]
        assert [(out.parent / f).resolve() for f in series.external_file[:]] == videos
        assert list(series.starting_frame[:]) == [0, 40, 50, 90]  # 40 frames per file
        np.testing.assert_array_equal(series.timestamps[:], _seconds(nwb, truths, "BehavCam_2"))
    assert validate(path=str(out)) == []
