"""Stub runs and clock alignment: what a stub keeps, and every time in the file moving together."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from support import SMALL_CAMERA, SMALL_SCOPE, read_nwb

from miniscope_core import (
    STUB_FRAMES,
    ConversionOptions,
    NewTimestamps,
    TimeAlignment,
    convert_session,
)
from miniscope_core.cli import main
from miniscope_core.testing.synthetic import write_session

SCOPE = "OnePhotonSeriesMiniscope"
CAMERA = "ImageSeriesBehavCam2"


@pytest.fixture
def noted(tmp_path: Path) -> Path:
    """Two acquisitions of SMALL_SCOPE (120 frames each) and SMALL_CAMERA, with notes."""
    root = tmp_path / "session"
    write_session(root, 2, SMALL_SCOPE, [SMALL_CAMERA], notes=[(1500, "laser on")])
    return root


@pytest.fixture
def reference(noted: Path, tmp_path: Path) -> Path:
    """The session converted in full, with nothing aligned."""
    out = tmp_path / "full.nwb"
    convert_session(noted, out)
    return out


def _times(path: Path) -> dict[str, np.ndarray]:
    """Every time the file holds: series timestamps and each interval table's times."""
    times: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:

        def visit(name: str, item: object) -> None:
            leaf = name.rsplit("/", 1)[-1]
            if isinstance(item, h5py.Dataset) and leaf in (
                "timestamps",
                "timestamp",
                "start_time",
                "stop_time",
            ):
                times[name] = item[()]

        h5.visititems(visit)
    return times


def test_stub_keeps_the_first_frames_of_each_acquisition_and_everything_else(
    noted, reference, tmp_path
):
    root = noted
    assert main(["convert", str(root), "--output-dir", str(tmp_path / "out"), "--stub"]) == 0
    stub = tmp_path / "out" / "session_stub.nwb"
    assert stub.is_file() and not (tmp_path / "out" / "session.nwb").exists()
    with read_nwb(reference) as full, read_nwb(stub) as part:
        # 120 frames per acquisition: rows 0-99 and 120-219 of the full series
        rows = np.r_[0:STUB_FRAMES, 120 : 120 + STUB_FRAMES]
        np.testing.assert_array_equal(
            part.acquisition[SCOPE].data[:], full.acquisition[SCOPE].data[rows]
        )
        np.testing.assert_array_equal(
            part.acquisition[SCOPE].timestamps[:], full.acquisition[SCOPE].timestamps[rows]
        )
        # the camera has 90 frames per acquisition, fewer than a stub keeps: all of them
        np.testing.assert_array_equal(
            part.acquisition[CAMERA].timestamps[:], full.acquisition[CAMERA].timestamps[:]
        )
        assert set(part.acquisition) == set(full.acquisition)
        assert set(part.intervals) == set(full.intervals)
        assert set(part.devices) == set(full.devices)
        assert part.session_start_time == full.session_start_time
        assert f"first {STUB_FRAMES} frames" in part.notes
        assert "Stub" not in full.notes  # the full file's notes only list what was left out
        assert full.notes.startswith("Left out of this file") and "experiment" in full.notes


def test_sync_pairs_move_every_series_and_table_together(noted, reference, tmp_path):
    root = noted
    sync = tmp_path / "ttl.csv"
    sync.write_text("local_time,reference_time\n0,10\n1000,2010\n")  # reference = 10 + 2 * local
    out = tmp_path / "aligned.nwb"
    assert (
        main(["convert", str(root), "-o", str(out), "--sync", str(sync), "--start-offset", "5"])
        == 0
    )
    before, after = _times(reference), _times(out)
    assert set(after) == set(before)
    assert {name.rsplit("/", 1)[-1] for name in before} == {
        "timestamps",
        "timestamp",
        "start_time",
        "stop_time",
    }  # series (scope, camera, head orientation), the notes events and the interval tables
    for name, times in before.items():
        np.testing.assert_allclose(after[name], 15 + 2 * times, rtol=0, atol=1e-9, err_msg=name)
    with read_nwb(out) as nwb:
        assert "interpolation of 2 (local, reference) sync pairs from ttl.csv" in nwb.notes
        assert "5 s added to every time" in nwb.notes


def test_a_sync_csv_in_the_session_folder_applies_by_itself(noted, reference, tmp_path):
    root = noted
    (root / "sync.csv").write_text("local_time,reference_time\n100,300\n200,400\n")
    out = tmp_path / "auto.nwb"
    with pytest.warns(UserWarning, match="lie outside the sync pairs"):
        convert_session(root, out)
    before, after = _times(reference), _times(out)
    for name, times in before.items():  # a pure shift by 200 s, extrapolated on both sides
        np.testing.assert_allclose(after[name], times + 200, rtol=0, atol=1e-9, err_msg=name)
    with read_nwb(out) as nwb:
        assert "from sync.csv" in nwb.notes and "were extrapolated" in nwb.notes


def test_new_timestamps_of_one_device_carry_the_others_along(noted, reference, tmp_path):
    root = noted
    with read_nwb(reference) as nwb:
        scope = nwb.acquisition[SCOPE].timestamps[:]
        camera = nwb.acquisition[CAMERA].timestamps[:]
    new = tuple(3.0 + 1.5 * scope)
    out = tmp_path / "replaced.nwb"
    options = ConversionOptions(alignment=NewTimestamps("Miniscope", new))
    with pytest.warns(UserWarning, match="camera|outside the sync pairs"):
        convert_session(root, out, options)  # camera frames before the first scope frame
    with read_nwb(out) as nwb:
        np.testing.assert_array_equal(nwb.acquisition[SCOPE].timestamps[:], new)
        inside = (camera >= scope[0]) & (camera <= scope[-1])
        aligned = nwb.acquisition[CAMERA].timestamps[:]
        np.testing.assert_allclose(aligned[inside], 3.0 + 1.5 * camera[inside], atol=1e-9)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("local_time,reference_time\n0,0\n2,1\n1,3\n", "line 4: local time 1 is not after 2"),
        ("local_time,reference_time\n0,0\n", "at least two"),
        ("t,ref\n0,0\n1,1\n", "needs the columns local_time, reference_time"),
        ("local_time,reference_time\n0,0\n1,one\n", "line 3: '1', 'one' are not both numbers"),
        ("local_time,reference_time\n", "has no pairs"),
    ],
)
def test_bad_sync_files_are_refused_in_one_line(noted, tmp_path, capsys, text, problem):
    root = noted
    sync = tmp_path / "sync_pairs.csv"
    sync.write_text(text)
    out = tmp_path / "x.nwb"
    assert main(["convert", str(root), "-o", str(out), "--sync", str(sync)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {sync}: ") and problem in error and "\n" not in error
    assert not out.exists()


def test_alignment_arguments_are_checked():
    with pytest.raises(ValueError, match="pair 3: reference time 1 is not after 2"):
        TimeAlignment((0.0, 1.0, 2.0), (0.0, 2.0, 1.0))
    with pytest.raises(SystemExit):
        main(["convert", "x", "--output-dir", "y", "--sync", "s.csv"])
    with pytest.raises(SystemExit):
        main(["convert", "x", "-o", "y.nwb", "--start-offset", "nan"])


def test_inspect_shows_the_sessions_sync_csv_or_what_is_wrong_with_it(noted, capsys):
    (noted / "sync.csv").write_text("local_time,reference_time\n0,0\n10,20\n")
    assert main(["inspect", str(noted), "--no-decode"]) == 0
    assert "sync.csv: Times aligned to a reference clock by linear interpolation of 2" in (
        capsys.readouterr().out
    )
    (noted / "sync.csv").write_text("local_time,reference_time\n0,0\n")
    assert main(["inspect", str(noted), "--no-decode", "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert f"{noted / 'sync.csv'}: one sync pair cannot give a clock's rate" in problems[-1]
