"""Settings that change between acquisitions are in a table, not only in the device's prose."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pynwb import NWBHDF5IO, validate
from support import SMALL_CAMERA, read_nwb

from miniscope_core import convert_session
from miniscope_core.errors import MiniscopeWarning
from miniscope_core.nwb.layout import build_layout
from miniscope_core.options import ConversionOptions
from miniscope_core.pipeline.stages import layout_options
from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    AcquisitionTruth,
    ScopeSpec,
    write_acquisition,
)
from miniscope_core.timing.clock import SessionClock

TABLE = "acquisition_devices"
FIRST = ScopeSpec(
    n_frames=60,
    height=48,
    width=64,
    frames_per_file=25,
    gain="Low",
    led0=50,
    ewl=-15,
    frame_rate="30FPS",
    roi={"height": 48, "width": 64, "leftEdge": 100, "topEdge": 80},
)
SECOND = replace(
    FIRST,
    height=32,
    width=40,
    frames_per_file=40,
    gain="High",
    led0=30,
    ewl=20,
    frame_rate="20FPS",
    interval_ms=50.0,
    roi={"height": 32, "width": 40, "leftEdge": 0, "topEdge": 8},
    seed=3,
)
CAMERA = replace(SMALL_CAMERA, n_frames=50, gaps={})


def _session(root: Path) -> list[AcquisitionTruth]:
    """Two acquisitions 3 minutes apart whose scope settings all differ, with a camera each."""
    truths = []
    for k, scope in enumerate([FIRST, SECOND]):
        start = DEFAULT_START + timedelta(minutes=3 * k)
        spec = AcquisitionSpec(start=start, scopes=[scope], cameras=[replace(CAMERA, seed=k)])
        truths.append(write_acquisition(root / f"{start:%H_%M_%S}", spec))
    return truths


def _session_seconds(nwb, truth: AcquisitionTruth, folder: str) -> np.ndarray:
    start_ms = round(nwb.session_start_time.timestamp() * 1000)
    return (truth.msec_since_epoch + truth.devices[folder].timestamps_ms - start_ms) / 1000.0


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, list[AcquisitionTruth]]:
    tmp = tmp_path_factory.mktemp("settings")
    truths = _session(tmp / "s")
    with pytest.warns(MiniscopeWarning, match="frame size changed"):  # the ROI shrinks
        convert_session(tmp / "s", tmp / "out.nwb")
    return tmp / "out.nwb", truths


def test_one_row_per_acquisition_and_device_with_the_settings_as_numbers(converted):
    out, truths = converted
    with read_nwb(out) as nwb:
        table = nwb.intervals[TABLE].to_dataframe()
    rows = table.set_index(["acquisition", "device"])
    labels = [t.folder.name for t in truths]
    assert sorted(rows.index) == sorted((a, d) for a in labels for d in ("Miniscope", "BehavCam 2"))
    scope = rows.xs("Miniscope", level="device").loc[labels]
    assert list(scope.device_type) == ["Miniscope_V4_BNO"] * 2
    assert list(scope.frames) == [60, 60]
    assert list(scope.frame_rate_hz) == [30.0, 20.0]
    assert list(scope.gain) == [1.0, 3.5]
    assert list(scope.led0) == [50.0, 30.0]
    assert list(scope.ewl) == [-15.0, 20.0]
    assert list(scope.roi_width) == [64, 40] and list(scope.roi_height) == [48, 32]
    assert list(scope.roi_left) == [100, 0] and list(scope.roi_top) == [80, 8]
    assert list(scope.frames_per_file) == [25, 40]
    assert list(scope.frame_width) == [64, 40] and list(scope.frame_height) == [48, 32]
    assert scope.measured_rate_hz.iloc[0] == pytest.approx(30.0, rel=0.05)
    assert scope.measured_rate_hz.iloc[1] == pytest.approx(20.0, rel=0.05)


def test_cameras_get_rows_with_unknown_settings_as_nan_or_minus_one(converted):
    out, truths = converted
    with read_nwb(out) as nwb:
        table = nwb.intervals[TABLE].to_dataframe()
    camera = table[table.device == "BehavCam 2"]
    assert list(camera.device_type) == ["WebCam"] * 2 and list(camera.frames) == [50, 50]
    assert camera[["frame_rate_hz", "gain", "led0", "ewl"]].isna().all().all()
    assert (camera[["roi_width", "roi_height", "roi_left", "roi_top"]] == -1).all().all()
    # linked videos are only counted, never decoded: their size is not known to the converter
    assert list(camera.frame_width) == [-1, -1] and list(camera.frames_per_file) == [40, 40]


def test_rows_span_each_devices_first_to_last_frame(converted):
    out, truths = converted
    with read_nwb(out) as nwb:
        table = nwb.intervals[TABLE].to_dataframe()
        assert list(table.start_time) == sorted(table.start_time)
        for truth in truths:
            for folder, name in (("Miniscope", "Miniscope"), ("BehavCam_2", "BehavCam 2")):
                row = table[(table.acquisition == truth.folder.name) & (table.device == name)]
                times = _session_seconds(nwb, truth, folder)
                assert (row.start_time.item(), row.stop_time.item()) == (times[0], times[-1])


def test_device_keeps_first_values_and_points_to_the_table(converted):
    out, _ = converted
    with read_nwb(out) as nwb:
        device = nwb.devices["Miniscope"]
        assert (device.gain, device.frameRate, device.led0) == ("Low", "30FPS", 50)
        assert list(device.ROI[:]) == [48, 64]
        text = device.description
        assert f"Settings change between acquisitions: see intervals/{TABLE}" in text
        assert "changed: ROI, ewl, frameRate, framesPerFile, gain, led0" in text
        assert "BehavCam2" in nwb.devices and TABLE not in nwb.devices["BehavCam2"].description
    assert validate(path=str(out)) == []


def test_device_with_timestamps_but_no_video_still_gets_a_row(tmp_path):
    truths = _session(tmp_path / "s")
    for video in truths[1].devices["BehavCam_2"].videos:
        video.unlink()
    out = tmp_path / "out.nwb"
    with pytest.warns(MiniscopeWarning) as caught:
        convert_session(tmp_path / "s", out)
    assert any("BehavCam_2: has no N.avi video; no image series" in str(w.message) for w in caught)
    with read_nwb(out) as nwb:
        table = nwb.intervals[TABLE].to_dataframe()
        row = table[(table.acquisition == truths[1].folder.name) & (table.device == "BehavCam 2")]
        times = _session_seconds(nwb, truths[1], "BehavCam_2")
        assert row.frames.item() == 0 and row.frame_width.item() == -1
        assert (row.start_time.item(), row.stop_time.item()) == (times[0], times[-1])


def test_provenance_is_written_when_given(tmp_path):
    clock = SessionClock(start=DEFAULT_START, start_ms=0, fallback_ms=0)
    metadata = {"NWBFile": {"session_description": "provenance only"}}
    chosen = layout_options(ConversionOptions())
    options = replace(chosen, source_script="miniscope-nwb 0.1.0", source_script_file_name="cli.py")
    out = tmp_path / "p.nwb"
    with NWBHDF5IO(out, "w") as io:  # no recordings, so no dataset is left to fill
        io.write(build_layout([], metadata, clock, out, options).nwbfile)
    with read_nwb(out) as nwb:
        assert (nwb.source_script, nwb.source_script_file_name) == ("miniscope-nwb 0.1.0", "cli.py")
    unsigned = replace(chosen, source_script="", source_script_file_name="")
    plain = build_layout([], metadata, clock, tmp_path / "q.nwb", unsigned).nwbfile
    assert plain.source_script is None
    with pytest.raises(ValueError, match="source_script"):
        replace(chosen, source_script="", source_script_file_name="cli.py")
