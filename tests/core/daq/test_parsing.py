"""Reading the DAQ's files: layouts, start times, settings, CSV variants and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from support import SMALL_SCOPE

from miniscope_core import MiniscopeFormatError, discover
from miniscope_core.daq.device_settings import frame_rate_hz, gain_factor, normalised_settings
from miniscope_core.daq.notes import read_notes
from miniscope_core.daq.orientation import read_head_orientation
from miniscope_core.daq.start_time import parse_start_time
from miniscope_core.daq.timestamps import find_gaps, measure_timing, read_timestamps
from miniscope_core.testing.synthetic import (
    AcquisitionSpec,
    CameraSpec,
    write_acquisition,
    write_session,
)


def test_session_acquisition_and_device_folders_are_all_accepted(two_acquisitions):
    root, truths = two_acquisitions
    session = discover(root)
    assert [a.label for a in session.acquisitions] == [t.folder.name for t in truths]
    assert [d.name for d in session.acquisitions[0].devices] == ["Miniscope", "BehavCam 2"]
    camera = session.acquisitions[0].device("BehavCam 2")
    assert camera.kind == "camera" and camera.folder.name == "BehavCam_2"
    one = discover(truths[1].folder)
    assert [a.label for a in one.acquisitions] == [truths[1].folder.name]
    device = discover(truths[1].folder / "Miniscope")
    assert device.acquisitions[0].start == session.acquisitions[1].start
    assert [d.name for d in device.acquisitions[0].devices] == ["Miniscope"]


def test_stale_base_directory_is_ignored(tmp_path):
    truth = write_acquisition(tmp_path / "a", AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[]))
    meta = json.loads((truth.folder / "metaData.json").read_text())
    assert not Path(meta["baseDirectory"]).exists()
    device = discover(truth.folder).acquisitions[0].devices[0]
    assert device.videos == truth.devices["Miniscope"].videos


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_start_time_and_utc_offset(tmp_path, layout):
    spec = AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[], layout=layout)
    truth = write_acquisition(tmp_path / "a", spec)
    start = discover(truth.folder).acquisitions[0].start
    assert start.epoch_ms == truth.msec_since_epoch
    assert start.utc_offset_minutes == -240
    assert start.as_datetime() == truth.start
    assert start.as_datetime().utcoffset() == timedelta(hours=-4)


def test_real_start_time_offsets():
    february = {"recordingStartTime": dict(year=2022, month=2, day=18, hour=10, minute=33,
                second=33, msec=0, msecSinceEpoch=1645198413000)}  # fmt: skip
    start = parse_start_time(february, Path("metaData.json"))
    assert start.utc_offset_minutes == -300  # US Eastern standard time


def test_missing_start_time_is_a_clear_error():
    with pytest.raises(MiniscopeFormatError, match=r"metaData.json: has no recording start time"):
        parse_start_time({"miniscopes": ["a"]}, Path("x/metaData.json"))


@pytest.mark.parametrize(
    ("value", "rate"), [("30FPS", 30.0), (20, 20.0), ("15 FPS", 15.0), (None, None), ("x", None)]
)
def test_frame_rate_strings_and_numbers(value, rate):
    assert frame_rate_hz(value) == rate


@pytest.mark.parametrize(
    ("value", "gain"), [("Low", 1.0), ("HIGH", 3.5), ("Medium", 2.0), (3.5, 3.5), ("odd", None)]
)
def test_gain_strings_and_numbers(value, gain):
    assert gain_factor(value) == gain


def test_normalised_settings_keep_only_numbers():
    raw = {"frameRate": "30FPS", "gain": "Low", "led0": 12, "ewl": -61, "compression": "GREY"}
    assert normalised_settings(raw) == {"frameRate": 30.0, "gain": 1.0, "led0": 12.0, "ewl": -61.0}


@pytest.mark.parametrize(
    "header",
    [
        "Frame Number,Time Stamp (ms),Buffer Index",
        "Frame Number,Time Stamp (ms),Buffer Index,DAQ Frame Number",
        "Frame Number,Time Stamp (ms),Buffer Index,DAQ Frame Number,Unix Time Stamp (ms)",
        "Time Stamp (ms),Frame Number,Buffer Index",
    ],
)
def test_timestamp_columns_are_read_by_name(tmp_path, header):
    columns = header.split(",")
    values = {"Frame Number": [0, 1, 2], "Time Stamp (ms)": [-12, 21, 54], "Buffer Index": [0] * 3,
              "DAQ Frame Number": [7, 8, 9], "Unix Time Stamp (ms)": [5, 6, 7]}  # fmt: skip
    rows = [",".join(str(values[c][i]) for c in columns) for i in range(3)]
    path = tmp_path / "timeStamps.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    table = read_timestamps(path)
    assert list(table["time_ms"]) == [-12, 21, 54]
    assert ("daq_frame" in table) == ("DAQ Frame Number" in columns)


def test_gaps_from_time_and_from_daq_frame_numbers():
    time_ms = np.array([0, 33, 66, 99, 198, 231, 264, 297])
    gaps = find_gaps(time_ms)
    assert [(g.after_row, g.missing) for g in gaps] == [(3, 2)]
    daq = np.array([0, 1, 2, 3, 6, 7, 9, 10])
    gaps = find_gaps(time_ms, daq)
    assert [(g.after_row, g.missing) for g in gaps] == [(3, 2), (5, 1)]


def test_timing_measures_rate_without_the_gaps(tmp_path):
    truth = write_acquisition(
        tmp_path / "a", AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[], daq_frame_number=True)
    )
    table = read_timestamps(truth.folder / "Miniscope" / "timeStamps.csv")
    timing = measure_timing(table)
    assert timing.n_frames == 120 and timing.dropped_frames == 2
    assert timing.rate_hz == pytest.approx(1000 / 33.3, rel=0.02)
    assert timing.jitter_ms < 2


def test_head_orientation_headers_and_missing_samples(tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("Time Stamp (ms),qw,qx,qy,qz\n-10,0,0,0,0\n27,0.5,0.5,0.5,-0.5\n60,1,0,0,0\n")
    old = tmp_path / "old.csv"
    old.write_text("qw,qx,qy,qz\n-10,0,0,0,0\n27,0.5,0.5,0.5,-0.5\n60,1,0,0,0\n")
    for path in (new, old):
        times, quats = read_head_orientation(path)
        assert list(times) == [27, 60]
        np.testing.assert_array_equal(quats, [[0.5, 0.5, 0.5, -0.5], [1, 0, 0, 0]])


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("", []),
        ("Time Stamp (ms), Note\n", []),
        ("Time Stamp (ms), Note\n1500,tail pinch\n2000,Miniscope,led0,55\n",
         [(1500, "tail pinch"), (2000, "Miniscope,led0,55")]),
        ("300,no header\n", [(300, "no header")]),
    ],
)  # fmt: skip
def test_notes_variants(tmp_path, text, rows):
    path = tmp_path / "notes.csv"
    path.write_text(text)
    assert read_notes(path) == rows


# ---------------------------------------------------------------- bad input


def _acquisition(tmp_path: Path) -> Path:
    spec = AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[CameraSpec(n_frames=20)])
    return write_acquisition(tmp_path / "acq", spec).folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: (f / "metaData.json").write_text("{not json"),
         r"acq/metaData.json: is not valid JSON"),
        (lambda f: (f / "metaData.json").write_text(""), r"acq/metaData.json: is empty"),
        (lambda f: (f / "Miniscope" / "metaData.json").write_text("[1]"),
         r"Miniscope/metaData.json: does not hold a JSON object"),
        (lambda f: (f / "Miniscope" / "timeStamps.csv").write_text("Frame,Time\n0,1\n"),
         r"timeStamps.csv: has no 'Time Stamp \(ms\)' column \(columns: Frame, Time\)"),
        (lambda f: (f / "Miniscope" / "timeStamps.csv").write_text(""),
         r"timeStamps.csv: is empty"),
        (lambda f: (f / "Miniscope" / "timeStamps.csv").write_text(
            "Frame Number,Time Stamp (ms),Buffer Index\n0,1,0\n1,x,0\n2,70,0\n"),
         r"timeStamps.csv: row 3: the time is not a number"),
        (lambda f: (f / "Miniscope" / "timeStamps.csv").write_text(
            "Frame Number,Time Stamp (ms),Buffer Index\n"
            "0,1,0\n1,40,0\n2,5000,0\n3,80,0\n4,120,0\n"),
         r"timeStamps.csv: row 4: time 5000 ms is out of order with the rows around it"),
        (lambda f: (f / "Miniscope" / "timeStamps.csv").write_text(
            "Frame Number,Time Stamp (ms),Buffer Index\n0,100,0\n1,140,0\n2,20,0\n3,60,0\n"),
         r"timeStamps.csv: row 4: time 20 ms is out of order"),
    ],
)  # fmt: skip
def test_bad_files_give_errors_naming_them(tmp_path, change, message):
    from miniscope_core import convert_session

    folder = _acquisition(tmp_path)
    change(folder)
    with pytest.raises(MiniscopeFormatError, match=message):
        convert_session(folder, tmp_path / "out.nwb")
    assert not (tmp_path / "out.nwb").exists()


def test_missing_device_folder_warns_and_converts_the_rest(tmp_path):
    from miniscope_core import convert_session
    from miniscope_core.errors import InventoryWarning

    folder = _acquisition(tmp_path)
    meta = json.loads((folder / "metaData.json").read_text())
    meta["cameras"].append("Top Cam")
    (folder / "metaData.json").write_text(json.dumps(meta))
    with pytest.warns(InventoryWarning, match=r"Top_Cam: .*lists camera 'Top Cam' but its folder"):
        result = convert_session(folder, tmp_path / "out.nwb")
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 120}


def test_not_a_session_folder(tmp_path):
    with pytest.raises(MiniscopeFormatError, match="holds no Miniscope acquisition"):
        discover(tmp_path)
    with pytest.raises(MiniscopeFormatError, match="is not a folder"):
        discover(tmp_path / "nope")


def test_sessions_sort_by_start_time_not_name(tmp_path):
    write_session(tmp_path / "s", n_acquisitions=2, scope=SMALL_SCOPE, cameras=[])
    (tmp_path / "s" / "11_34_45").rename(tmp_path / "s" / "zz_first")
    labels = [a.label for a in discover(tmp_path / "s").acquisitions]
    assert labels == ["zz_first", "11_37_45"]
