"""Real DAQ metadata and timestamps from other labs, paired with synthetic videos of the right size.

The real files are copied (never modified in place); long recordings are trimmed to their first
rows so the suite stays fast. Times must come out exactly as the DAQ wrote them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pynwb import validate
from support import REAL_DATA, read_nwb, real_data

from miniscope_core import FrameCountMismatch, convert_session, discover, inspect_session
from miniscope_core.testing.synthetic import camera_frames, imaging_frames, write_video

# Every test here needs the real recordings: skip the module locally without them, fail in CI.
real_data()

SESSIONS = sorted(
    str(path.parent.relative_to(REAL_DATA))
    for path in REAL_DATA.glob("Miniscope2C/**/metaData.json")
    if path.parent.parent.name != "behaviorTracker"
    and not (path.parent.parent / "metaData.json").exists()
)
KEEP_ROWS = 40
# Sessions whose first KEEP_ROWS head-orientation rows hold damaged (non-unit) quaternions.
GARBAGE_ORIENTATION = {
    "Miniscope2C/2color_pilot_tdTomato/cv02/2022_05_31/12_59_27",
    "Miniscope2C/fretscope/testTarget/2020_09_01/13_20_13",
    "Miniscope2C/fretscope/test_15_29_34/14_49_16",
}
SENSOR_SIZE = {"Miniscope_V4_BNO": (608, 608), "Miniscope_V4": (608, 608), "WebCam": (640, 480)}


def _frame_size(settings: dict) -> tuple[int, int]:
    roi = settings.get("ROI")
    if roi:
        return int(roi["width"]), int(roi["height"])
    return SENSOR_SIZE[settings["deviceType"]]


def _trim_csv(path: Path, rows: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]))


def _pair_with_videos(session: Path, target: Path, rows: int = KEEP_ROWS) -> Path:
    """A copy of a real session with trimmed CSVs and one synthetic 0.avi per device."""
    shutil.copytree(session, target, ignore=shutil.ignore_patterns("*.avi.bak"))
    for acquisition in discover(target).acquisitions:
        for device in acquisition.devices:
            for name in ("timeStamps.csv", "headOrientation.csv"):
                if (device.folder / name).exists():
                    _trim_csv(device.folder / name, rows)
            width, height = _frame_size(device.settings)
            codec = str(device.settings["compression"])
            if device.kind == "camera":
                frames = camera_frames(rows, height, width)
            else:
                frames = imaging_frames(rows, height, width, n_cells=5)
            write_video(device.folder / "0.avi", frames, codec, (width, height))
    return target


def test_every_real_session_is_found():
    assert len(SESSIONS) == 9


@pytest.mark.parametrize("relative", SESSIONS)
def test_real_session_inspects_without_videos(relative):
    report = inspect_session(REAL_DATA / relative, decode=False)
    for acquisition in report.acquisitions:
        assert acquisition.start is not None and acquisition.start[-6:] in ("-04:00", "-05:00")
        for device in acquisition.devices:
            assert device.timestamp_rows > 500
            assert 9 < device.measured_rate_hz < 35, device
            assert device.jitter_ms < 10


def _devices(relative: str) -> dict:
    report = inspect_session(REAL_DATA / relative, decode=False)
    return {d.device: d for d in report.acquisitions[0].devices}


def test_real_facts_the_readme_lists():
    numeric = _devices("Miniscope2C/fretscope/test_15_29_34/14_49_16")
    assert numeric["Miniscope_side"].requested_rate_hz == 20.0
    zeros = _devices("Miniscope2C/2color_pilot_mCherry/2C3/2021_05_14/11_46_31")
    assert zeros["miniscope_top"].head_orientation_samples == 0
    assert (
        zeros["miniscope_side"].head_orientation_samples == zeros["miniscope_side"].timestamp_rows
    )
    gaps = _devices("Miniscope2C/2color_pilot_tdTomato/2C3/2021_05_28/14_10_56")
    assert gaps["miniscope_top"].timestamp_rows != gaps["miniscope_side"].timestamp_rows
    assert gaps["miniscope_top"].dropped_frames > 0
    tracker = _devices("Miniscope2C/2color_pilot_tdTomato/bench/2021_06_03/13_12_40")
    assert sorted(tracker) == ["miniscope_side", "miniscope_top"]  # behaviorTracker/ is no device
    webcam = _devices("Miniscope2C/2color_pilot_tdTomato/cv02/2022_06_13/16_19_18")
    assert webcam["behavcam"].kind == "camera" and webcam["behavcam"].timestamp_rows > 17000


def test_real_webcam_reconnect_gap_is_found():
    from miniscope_core.daq.timestamps import measure_timing, read_timestamps

    folder = REAL_DATA / "Miniscope2C/2color_pilot_mCherry/m02/2022_02_18/10_33_33/behav_cam"
    gaps = measure_timing(read_timestamps(folder / "timeStamps.csv")).gaps
    assert max(g.stop_ms - g.start_ms for g in gaps) > 1300


@pytest.mark.parametrize("relative", SESSIONS)
def test_real_session_converts_with_synthetic_videos(relative, tmp_path):
    session = _pair_with_videos(REAL_DATA / relative, tmp_path / "session")
    out = tmp_path / "out.nwb"
    result = convert_session(session, out)
    damaged = [w for w in result.warnings if "headOrientation.csv: " in w and "rows damaged" in w]
    assert [w for w in result.warnings if w not in damaged] == []
    # early V4 units' BNO055 garbage rows are skipped and warned of (test_damaged_streams counts)
    assert bool(damaged) == (relative in GARBAGE_ORIENTATION)
    assert validate(path=str(out)) == []
    found = discover(session)
    acquisition = found.acquisitions[0]
    first_rows = {
        d.name: int(pd.read_csv(d.timestamps_path)["Time Stamp (ms)"].iloc[0])
        for d in acquisition.devices
    }
    start_ms = acquisition.start.epoch_ms + min(first_rows.values())
    with read_nwb(out) as nwb:
        assert round(nwb.session_start_time.timestamp() * 1000) == start_ms
        for device in acquisition.devices:
            prefix = "OnePhotonSeries" if device.kind == "miniscope" else "ImageSeries"
            name = prefix + "".join(p[:1].upper() + p[1:] for p in device.name.split("_"))
            series = nwb.acquisition[name]
            rows = pd.read_csv(device.timestamps_path)["Time Stamp (ms)"].to_numpy()
            expected = (acquisition.start.epoch_ms + rows - start_ms) / 1000.0
            np.testing.assert_array_equal(series.timestamps[:], expected)
            if device.kind == "miniscope":
                width, height = _frame_size(device.settings)
                assert series.data.shape == (KEEP_ROWS, width, height)
                scope = nwb.devices[name.removeprefix("OnePhotonSeries")]
                assert scope.gain == str(device.settings["gain"])
                assert f"ewl: {device.settings['ewl']}" in scope.description
                if "ROI" in device.settings:
                    assert list(scope.ROI[:]) == [height, width]
                    assert "ROI.leftEdge: 0" in scope.description


def test_real_unfinished_ffv1_video_decodes_its_89_frames(tmp_path):
    source = REAL_DATA / "Miniscope2C/fretscope/testTarget/2020_09_01/13_20_13"
    session = tmp_path / "13_20_13"
    shutil.copytree(source, session)
    (session / "Miniscope_side/1.avi.bak").rename(session / "Miniscope_side/1.avi")
    out = tmp_path / "out.nwb"
    with pytest.warns(FrameCountMismatch, match=r"1\.avi: 89 decodable frames but .* lists 91"):
        convert_session(session, out)
    rows = pd.read_csv(session / "Miniscope_side/timeStamps.csv")["Time Stamp (ms)"].to_numpy()
    with read_nwb(out) as nwb:
        series = nwb.acquisition["OnePhotonSeriesMiniscopeSide"]
        assert series.data.shape == (89, 608, 608)
        start = nwb.session_start_time.timestamp() * 1000
        expected_ms = 1598980813110 + rows[1000:1089]  # rows of 1.avi (0.avi was never published)
        np.testing.assert_allclose(series.timestamps[:] * 1000 + start, expected_ms, atol=1e-3)
        assert series.data[:].max() > 0


def test_real_lone_device_folder_needs_a_start_time(tmp_path):
    folder = _pair_with_videos(REAL_DATA / "minian-validation/eridanus", tmp_path / "eridanus")
    from miniscope_core import MiniscopeFormatError

    with pytest.raises(MiniscopeFormatError, match="NWBFile.session_start_time"):
        convert_session(folder, tmp_path / "no.nwb")
    meta = tmp_path / "meta.yaml"
    meta.write_text("NWBFile:\n  session_start_time: '2021-05-20T10:00:00-04:00'\n")
    result = convert_session(folder, tmp_path / "out.nwb", metadata_path=meta)
    assert result.series_frames == {"OnePhotonSeriesMiniscope": KEEP_ROWS}
    with read_nwb(tmp_path / "out.nwb") as nwb:
        assert "behavior" not in nwb.processing  # its first rows are all zero quaternions
