"""Damage in auxiliary streams (head orientation, notes) is skipped and counted and never refuses a
recording; values the tool cannot read (settings, start times, a birth after the start) are said."""

from __future__ import annotations

import json
import re
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from support import SMALL_SCOPE, acquisition, read_nwb, real_data

from miniscope_core import MiniscopeFormatError, convert_session, discover
from miniscope_core.daq.device_settings import (
    frame_rate_hz,
    gain_factor,
    number,
    unreadable_settings,
)
from miniscope_core.daq.notes import read_notes, read_notes_file
from miniscope_core.daq.orientation import read_head_orientation, read_orientation
from miniscope_core.daq.start_time import AssumedZoneWarning, parse_start_time
from miniscope_core.errors import MiniscopeWarning
from miniscope_core.metadata.layers import resolve_metadata
from miniscope_core.metadata.schema import MetadataError
from miniscope_core.testing.synthetic import AcquisitionSpec, write_acquisition

HEADER = "Time Stamp (ms),qw,qx,qy,qz\n"
GARBAGE = "332,4.23726e+35,3.45249e-32,6.88962e-41,nan"
A = "27,0.967529,-0.162476,-0.1297,0.143799"  # a real BNO055 row (norm 1.0000)
B = "60,1,0,0,0"
A_Q, B_Q = [0.967529, -0.162476, -0.1297, 0.143799], [1.0, 0.0, 0.0, 0.0]


def _lab_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, MiniscopeWarning)]


# ---------------------------------------------------------------- headOrientation.csv


# (content, kept times, kept quaternions, rows, missing, damaged, first damaged file lines)
ORIENTATION_CASES = {
    "clean": (HEADER + f"-10,0,0,0,0\n{A}\n{B}\n", [27, 60], [A_Q, B_Q], 3, 1, 0, ()),
    "garbage row": (HEADER + f"{A}\n{GARBAGE}\n{B}\n", [27, 60], [A_Q, B_Q], 3, 0, 1, (3,)),
    "nan and inf": (
        HEADER + f"{A}\n70,nan,0,0,1\n80,inf,0,0,0\n90,-inf,1,0,0\nnan,1,0,0,0\n{B}\n",
        [27, 60], [A_Q, B_Q], 6, 0, 4, (3, 4, 5, 6),
    ),
    "truncated last line": (HEADER + f"{A}\n{B}\n90,0.96", [27, 60], [A_Q, B_Q], 3, 0, 1, (4,)),
    "unfinished last line of five fields": (
        HEADER + f"{A}\n{B}", [27], [A_Q], 2, 0, 1, (3,),
    ),
    "header only": (HEADER, [], [], 0, 0, 0, ()),
    "header only, no newline": (HEADER.strip(), [], [], 0, 0, 0, ()),
    "0 bytes": ("", [], [], 0, 0, 0, ()),
    "extra columns": (
        HEADER + f"{A}\n{B},7\n{B},\n61,1,0,0,0,0,0\n", [27], [A_Q], 4, 0, 3, (3, 4, 5),
    ),
    "old 4-name header, 5-value rows": (
        f"qw,qx,qy,qz\n-10,0,0,0,0\n{A}\n{B}\n", [27, 60], [A_Q, B_Q], 3, 1, 0, (),
    ),
    "rows of 3 values": (HEADER + f"{A}\n0.5,0.5,0.5\n1,0,0\n{B}\n", [27, 60], [A_Q, B_Q], 4, 0,
                         2, (3, 4)),
    "time not a number": (
        HEADER + f"{A}\nabc,1,0,0,0\n,1,0,0,0\n1_0,1,0,0,0\n{B}\n",
        [27, 60], [A_Q, B_Q], 5, 0, 3, (3, 4, 5),
    ),
    "fractional ms kept, as in timeStamps.csv": (
        HEADER + f"{A}\n61.5,1,0,0,0\n", [27, 61.5], [A_Q, [1, 0, 0, 0]], 2, 0, 0, (),
    ),
    "norm off by more than 0.1": (
        HEADER + "1,0.5,0,0,0\n2,1.2,0,0,0\n3,0.91,0,0,0\n4,1.09,0,0,0\n5,1e-43,0,0,0\n",
        [3, 4], [[0.91, 0, 0, 0], [1.09, 0, 0, 0]], 5, 0, 3, (2, 3, 6),
    ),
    "zero rows are no sample": (
        HEADER + "1,0,0,0,0\n2,-0,0,0,0\n3, 0, 0, 0, 0\n", [], [], 3, 3, 0, (),
    ),
    "spaces and CRLF": (
        HEADER.replace("\n", "\r\n")
        + "27, 0.967529, -0.162476, -0.1297, 0.143799\r\n60,1,0,0,0\r\n",
        [27, 60], [A_Q, B_Q], 2, 0, 0, (),
    ),
    "no header": (f"{A}\n{B}\n", [27, 60], [A_Q, B_Q], 2, 0, 0, ()),
    "blank lines": (HEADER + f"{A}\n\n{B}\n", [27, 60], [A_Q, B_Q], 2, 0, 0, ()),
    "first damaged rows named up to five": (
        HEADER + "".join(f"{t},2,0,0,0\n" for t in range(7)) + f"{B}\n",
        [60], [B_Q], 8, 0, 7, (2, 3, 4, 5, 6),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", ORIENTATION_CASES)
def test_orientation_rows_kept_empty_and_damaged(tmp_path, case):
    text, times, quaternions, rows, missing, damaged, first = ORIENTATION_CASES[case]
    path = tmp_path / "headOrientation.csv"
    path.write_bytes(text.encode())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = read_orientation(path)
    assert found.time_ms.dtype == np.float64 and list(found.time_ms) == times
    np.testing.assert_array_equal(found.quaternions, np.array(quaternions).reshape(-1, 4))
    assert (found.rows, found.missing, found.damaged, found.first_damaged) == (
        rows, missing, damaged, first,
    )  # fmt: skip
    assert found.samples == len(times) and found.problem is None
    messages = _lab_warnings(caught)
    if damaged:
        lines = ", ".join(str(n) for n in first) + (", ..." if damaged > len(first) else "")
        assert messages == [
            f"{path}: {damaged} of {rows} rows damaged (not five finite numbers time,qw,qx,qy,qz "
            f"with a quaternion norm within 0.1 of 1), skipped; line{'s' * (damaged > 1)} {lines}"
        ]
    else:
        assert messages == []
    old_times, old_quaternions = read_head_orientation(path)  # the old signature still works
    np.testing.assert_array_equal(old_times, found.time_ms)
    np.testing.assert_array_equal(old_quaternions, found.quaternions)


def test_orientation_with_invalid_utf8_bytes_skips_only_that_row(tmp_path):
    path = tmp_path / "headOrientation.csv"
    path.write_bytes(HEADER.encode() + A.encode() + b"\n61,\xff\xfe,0,0,1\n" + B.encode() + b"\n")
    with pytest.warns(
        MiniscopeWarning, match=r"headOrientation.csv: 1 of 3 rows damaged .* line 3$"
    ):
        found = read_orientation(path)
    assert list(found.time_ms) == [27, 60] and found.damaged == 1


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (
            lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST"),
            "is not text (it holds NUL bytes)",
        ),
        (lambda p: p.mkdir(), "cannot be read (Is a directory)"),
    ],
    ids=["binary", "unreadable"],
)
def test_orientation_file_that_cannot_be_read_is_a_warning(tmp_path, write, problem):
    path = tmp_path / "headOrientation.csv"
    write(path)
    with pytest.warns(MiniscopeWarning) as caught:
        found = read_orientation(path)
    assert _lab_warnings(list(caught)) == [f"{path}: {problem}; head orientation left out"]
    assert found.problem == problem and found.samples == 0 and found.quaternions.shape == (0, 4)


# Real files: (session/device, rows, kept, empty, damaged, first damaged lines)
REAL_ORIENTATION = [
    ("Miniscope2C/fretscope/testTarget/2020_09_01/13_20_13/Miniscope_side", 1091, 803, 0, 288,
     (4, 11, 13, 16, 19)),
    ("Miniscope2C/fretscope/testTarget/2020_09_01/13_20_13/Miniscope_top", 1092, 784, 0, 308,
     (2, 8, 11, 18, 21)),
    ("Miniscope2C/2color_pilot_tdTomato/cv02/2022_05_31/12_59_27/miniscope_top", 12607, 0, 2765,
     9842, (2, 9, 10, 11, 12)),
    ("Miniscope2C/2color_pilot_tdTomato/cv02/2022_05_31/12_59_27/miniscope_side", 12606, 0,
     12606, 0, ()),
    ("Miniscope2C/2color_pilot_tdTomato/2C3/2021_05_28/14_10_56/miniscope_top", 8914, 8308, 605,
     1, (8310,)),  # one row of norm 0.495
    ("Miniscope2C/2color_pilot_mCherry/m02/2022_02_18/10_33_33/miniscope_top", 8938, 8938, 0, 0,
     ()),
    ("minian-validation/eridanus", 35766, 0, 35766, 0, ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("relative", "rows", "kept", "empty", "damaged", "first"), REAL_ORIENTATION
)
def test_real_orientation_files_counted(relative, rows, kept, empty, damaged, first):
    path = real_data(relative) / "headOrientation.csv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = read_orientation(path)
    assert (found.rows, found.samples, found.missing, found.damaged, found.first_damaged) == (
        rows, kept, empty, damaged, first,
    )  # fmt: skip
    norms = np.linalg.norm(found.quaternions, axis=1)
    assert np.all(np.abs(norms - 1) <= 0.1)
    assert len(_lab_warnings(caught)) == (1 if damaged else 0)


# ---------------------------------------------------------------- notes.csv


NOTES_CASES = {
    "clean": ("Time Stamp (ms), Note\n1500,tail pinch\n2000,Miniscope,led0,55\n",
              [(1500, "tail pinch"), (2000, "Miniscope,led0,55")], 2, 0, ()),
    "lines without a time": (
        "Time Stamp (ms), Note\n1500,tail pinch\nforgot the time\n, empty time\n2000,b\n"
        "nan,x\ninf,y\n1_0,z\n",
        [(1500, "tail pinch"), (2000, "b")], 7, 5, (3, 4, 6, 7, 8),
    ),
    "headerless, continued line": ("300,a note\nthat went on\n", [(300, "a note")], 2, 1, (2,)),
    "invalid UTF-8 text is kept": (b"10,caf\xe9\n\xff\xfe,bad\n", [(10, "caf\ufffd")], 2, 1,
                                   (2,)),
    "0 bytes": ("", [], 0, 0, ()),
    "more than five": ("".join(f"x{n}\n" for n in range(7)) + "5,ok\n", [(5, "ok")], 8, 7,
                       (1, 2, 3, 4, 5)),
}  # fmt: skip


@pytest.mark.parametrize("case", NOTES_CASES)
def test_notes_lines_kept_and_skipped(tmp_path, case):
    text, rows, lines, skipped, first = NOTES_CASES[case]
    path = tmp_path / "notes.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notes = read_notes_file(path)
    assert notes.rows == rows and read_notes(path) == rows
    assert (notes.lines, notes.skipped, notes.first_skipped) == (lines, skipped, first)
    messages = _lab_warnings(caught)
    assert len(messages) == (1 if skipped else 0)
    if skipped:
        assert messages[0].startswith(f"{path}: {skipped} of {lines} lines do")
        assert messages[0].endswith(", ".join(map(str, first)) + (", ..." if skipped > 5 else ""))


def test_notes_that_cannot_be_read_are_a_warning(tmp_path):
    path = tmp_path / "notes.csv"
    path.mkdir()
    with pytest.warns(
        MiniscopeWarning, match=r"notes.csv: cannot be read .*; its notes are left out"
    ):
        assert read_notes(path) == []


# ---------------------------------------------------------------- conversions


def _damage_orientation(path: Path) -> list[int]:
    """Rows 10, 20, 30 made garbage and the last line cut short; returns the damaged rows."""
    lines = path.read_text().split("\n")  # [header, row 0, ..., row n-1, ""]
    for row, tail in ((10, "4.23726e+35,3.45249e-32,6.88962e-41,nan"), (20, "nan,0,0,1"),
                      (30, "0.5,0.1,0.1,0.1")):  # fmt: skip
        lines[row + 1] = lines[row + 1].split(",")[0] + "," + tail
    last = len(lines) - 3
    lines[last + 1] = ",".join(lines[last + 1].split(",")[:3])
    path.write_text("\n".join(lines[:-1]))  # no newline after the cut line
    return [10, 20, 30, last]


def test_damaged_orientation_and_notes_convert_with_the_valid_samples(tmp_path):
    spec = AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[], notes=[(20, "go"), (1500, "up")])
    truth = write_acquisition(tmp_path / "acq", spec)
    scope = truth.devices["Miniscope"]
    orientation = scope.folder / "headOrientation.csv"
    damaged = _damage_orientation(orientation)
    notes = truth.folder / "notes.csv"
    notes.write_text(notes.read_text() + "no time here\n3000,later\n")
    out = tmp_path / "out.nwb"
    result = convert_session(truth.folder, out)

    assert result.series_frames == {"OnePhotonSeriesMiniscope": 120}
    lines = ", ".join(str(row + 2) for row in damaged)  # row 0 is on line 2
    assert sorted(result.warnings) == [
        f"{orientation}: 4 of 120 rows damaged (not five finite numbers time,qw,qx,qy,qz with a "
        f"quaternion norm within 0.1 of 1), skipped; lines {lines}",
        f"{notes}: 1 of 4 lines does not start with a time (ms since the recording start), "
        "skipped; line 4",
    ]
    first_ms = int(scope.timestamps_ms[0])
    kept = [i for i in range(120) if i not in (0, 1, *damaged)]  # rows 0, 1 are 0,0,0,0
    with read_nwb(out) as nwb:
        assert nwb.acquisition["OnePhotonSeriesMiniscope"].data.shape == (120, 64, 48)
        series = nwb.processing["behavior"]["TimeSeriesMiniscopeHeadOrientationMiniscope"]
        np.testing.assert_array_equal(series.data[:], scope.quaternions[kept])
        np.testing.assert_array_equal(
            series.timestamps[:], (scope.timestamps_ms[kept] - first_ms) / 1000.0
        )
        assert "114 samples kept of 120 rows of headOrientation.csv; 2 rows empty" in (
            series.description
        )
        assert "4 rows damaged" in series.description
        events = nwb.events["notes"].to_dataframe()
        assert list(events.annotation) == ["go", "up", "later"]
        assert (
            "1 line that did not start with a time was left out" in nwb.events["notes"].description
        )


def test_orientation_that_is_not_text_leaves_only_the_orientation_out(tmp_path):
    truth = write_acquisition(tmp_path / "acq", AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[]))
    orientation = truth.devices["Miniscope"].folder / "headOrientation.csv"
    orientation.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out.nwb"
    result = convert_session(truth.folder, out)
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 120}
    assert result.warnings == [
        f"{orientation}: is not text (it holds NUL bytes); head orientation left out"
    ]
    with read_nwb(out) as nwb:
        assert nwb.acquisition["OnePhotonSeriesMiniscope"].data.shape == (120, 64, 48)
        assert "behavior" not in nwb.processing


# ---------------------------------------------------------------- start time


@pytest.fixture
def new_york(monkeypatch):
    """This computer's zone is US Eastern (POSIX rule: no tz database needed)."""
    monkeypatch.setenv("TZ", "EST+05EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield timezone(timedelta(hours=-4))  # in May
    monkeypatch.undo()
    time.tzset()


MAY = dict(year=2021, month=5, day=14, hour=11, minute=34, second=45)


@pytest.mark.parametrize(
    ("fields", "nested", "msec", "warned"),
    [
        ({**MAY, "msec": 103}, True, 103, r"metaData.json: no recordingStartTime.msecSinceEpoch: "),
        ({**MAY, "msec": 103}, False, 103, r"metaData.json: no msecSinceEpoch: "),
        (MAY, True, 0, r"no recordingStartTime.msecSinceEpoch and no recordingStartTime.msec "
                       r"\(read as 0\): "),
        ({**MAY, "msec": 103, "msecSinceEpoch": None}, True, 103, r"msecSinceEpoch: "),
    ],
    ids=["nested", "flat", "no msec", "null msecSinceEpoch"],
)  # fmt: skip
def test_start_without_msec_since_epoch_is_read_in_this_zone(
    new_york, fields, nested, msec, warned
):
    metadata = {"recordingStartTime": fields} if nested else {"miniscopes": ["a"], **fields}
    with pytest.warns(AssumedZoneWarning, match=warned) as caught:
        start = parse_start_time(metadata, Path("s/metaData.json"))
    expected = datetime(2021, 5, 14, 11, 34, 45, msec * 1000, tzinfo=new_york)
    assert (
        start.as_datetime() == expected
        and start.as_datetime().utcoffset() == new_york.utcoffset(None)
    )
    assert start.epoch_ms == round(expected.timestamp() * 1000)
    assert start.zone_assumed and not start.from_folder_names
    message = str(caught[0].message)
    assert (
        f"2021-05-14T11:34:45.{msec:03d} was read in this computer's time zone (EDT, UTC-04:00)"
        in message
    )
    assert message.endswith(
        "NWBFile.session_start_time in the metadata file (--metadata) overrides it"
    )
    assert len(caught) == 1


def test_start_with_msec_since_epoch_but_no_msec_is_exact_and_silent(recwarn):
    fields = {**MAY, "msecSinceEpoch": 1621006485103}  # 11:34:45.103 EDT
    start = parse_start_time({"recordingStartTime": fields}, Path("metaData.json"))
    assert (start.epoch_ms, start.utc_offset_minutes, start.zone_assumed) == (
        1621006485103,
        -240,
        False,
    )
    assert not [w for w in recwarn if issubclass(w.category, MiniscopeWarning)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**MAY, "month": "May"},
         r"s/metaData.json: recordingStartTime.month = \"May\" is not a whole number"),
        ({**MAY, "msec": 1.5}, r"recordingStartTime.msec = 1.5 is not a whole number"),
        ({**MAY, "day": True}, r"recordingStartTime.day = true is not a whole number"),
        ({**MAY, "year": None}, r"recordingStartTime.year = null is not a whole number"),
        ({**MAY, "msecSinceEpoch": "soon"}, r"recordingStartTime.msecSinceEpoch = \"soon\""),
        ({**MAY, "month": 13}, r"invalid recording start time \(year 2021, month 13, .*\): month"),
    ],
)  # fmt: skip
def test_start_fields_that_are_not_numbers_are_a_one_line_error(fields, message):
    with pytest.raises(MiniscopeFormatError, match=message) as error:
        parse_start_time({"recordingStartTime": fields}, Path("s/metaData.json"))
    assert "\n" not in str(error.value)


def _without_epoch(folder: Path) -> Path:
    meta_path = folder / "metaData.json"
    meta = json.loads(meta_path.read_text())
    del meta["recordingStartTime"]["msecSinceEpoch"]
    meta_path.write_text(json.dumps(meta))
    return meta_path


def test_session_without_msec_since_epoch_converts_and_a_given_start_wins(tmp_path, new_york):
    truth = write_acquisition(tmp_path / "acq", AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[]))
    meta_path = _without_epoch(truth.folder)  # the synthetic start is 11:34:45 at UTC-4
    first_ms = int(truth.devices["Miniscope"].timestamps_ms[0])
    result = convert_session(truth.folder, tmp_path / "out.nwb")
    assert len(result.warnings) == 1 and result.warnings[0].startswith(
        f"{meta_path}: no recordingStartTime.msecSinceEpoch: "
    )
    with read_nwb(tmp_path / "out.nwb") as nwb:
        expected = truth.start + timedelta(milliseconds=first_ms)
        assert nwb.session_start_time == expected
    given = datetime(2021, 5, 14, 8, 0, tzinfo=timezone(timedelta(hours=-7)))
    overrides = {"NWBFile": {"session_start_time": given.isoformat()}}
    convert_session(truth.folder, tmp_path / "given.nwb", metadata=overrides)
    with read_nwb(tmp_path / "given.nwb") as nwb:
        assert nwb.session_start_time == given  # the Record press; frames keep their own times
        times = nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[:]
        np.testing.assert_allclose(times, truth.devices["Miniscope"].timestamps_ms / 1000.0)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("value", "rate"),
    [("30FPS", 30.0), ("30fps", 30.0), ("15 FPS", 15.0), (" 20 ", 20.0), ("12.5FPS", 12.5),
     (20, 20.0), (29.4, 29.4), ("30FSP", None), ("fast", None), ("FPS", None), ("30 FPS x", None),
     (0, None), (-30, None), (float("nan"), None), (True, None), (None, None), ([30], None)],
)  # fmt: skip
def test_frame_rate_is_strict(value, rate):
    assert frame_rate_hz(value) == rate


@pytest.mark.parametrize(
    ("value", "gain"),
    [("Low", 1.0), ("HIGH", 3.5), (" medium ", 2.0), (3.5, 3.5), ("2", 2.0), ("odd", None),
     ("nan", None), (float("inf"), None), (True, None), ("Lowest", None)],
)  # fmt: skip
def test_gain_is_strict(value, gain):
    assert gain_factor(value) == gain


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12.0), ("12", 12.0), ("-61", -61.0), (" 3.5 ", 3.5), ("1e2", 100.0), ("1_0", None),
     ("nan", None), ("inf", None), ("bright", None), (False, None), (None, None), ({}, None)],
)  # fmt: skip
def test_numeric_settings_are_strict(value, expected):
    assert number(value) == expected


def test_unreadable_settings_are_named_with_what_is_used_instead():
    raw = {"frameRate": "30FSP", "gain": "loud", "led0": "bright", "led1": True, "ewl": [1],
           "framesPerFile": "many", "deviceType": "Miniscope_V4_BNO"}  # fmt: skip
    assert unreadable_settings(raw) == [
        'frameRate "30FSP" is not a frame rate (e.g. 30FPS); the rate measured from '
        "timeStamps.csv is used",
        'gain "loud" is not a gain (a number, or Low, Medium or High); the device table\'s '
        "gain is NaN",
        'led0 "bright" is not a number (LED power in percent); the device table\'s led0 is NaN',
        "led1 true is not a number (LED power in percent); it is not in the device table",
        "ewl [1] is not a number (focus setting); the device table's ewl is NaN",
    ]
    assert unreadable_settings({"frameRate": "fast"})[0].startswith('frameRate "fast" is not')
    readable = {"frameRate": "30FPS", "gain": "Low", "led0": 12, "ewl": "-61", "led1": None}
    assert unreadable_settings(readable) == [] and unreadable_settings({}) == []


# ---------------------------------------------------------------- date of birth


@pytest.fixture
def session(tmp_path):
    """One acquisition recorded at 2021-05-14 11:34:45-04:00 (the synthetic default)."""
    return discover(acquisition(tmp_path / "m01" / "2021_05_14" / "11_34_45"))


@pytest.mark.parametrize(
    ("layer", "refused"),
    [
        ("Subject:\n  date_of_birth: '2021-05-15T00:00:00-04:00'\n", "the recorded start of"),
        ("Subject:\n  date_of_birth: '2021-05-14T11:35:00-04:00'\n", "the recorded start of"),
        ("Subject:\n  date_of_birth: '2021-05-01T00:00:00-04:00'\n", None),
        ("Subject:\n  date_of_birth: '2021-05-14T15:34:44+00:00'\n", None),  # a second before
        ("NWBFile:\n  session_start_time: '2021-04-01T09:00:00-04:00'\n"
         "Subject:\n  date_of_birth: '2021-05-01T00:00:00-04:00'\n",
         "NWBFile.session_start_time in"),
    ],
)  # fmt: skip
def test_date_of_birth_after_the_session_start_is_refused(session, tmp_path, layer, refused):
    user = tmp_path / "user.yaml"
    user.write_text(layer)
    if refused is None:
        assert "date_of_birth" in resolve_metadata(session, user_file=user)["Subject"]
        return
    with pytest.raises(MetadataError) as error:
        resolve_metadata(session, user_file=user)
    message = str(error.value)
    assert message.startswith(f"{user}: Subject.date_of_birth = ") and "\n" not in message
    assert "after the session start" in message and refused in message


def test_date_of_birth_check_names_the_layer_that_gives_it(session, tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text("Subject:\n  date_of_birth: '2022-01-01T00:00:00+00:00'\n")
    user = tmp_path / "user.yaml"
    user.write_text("NWBFile:\n  session_start_time: '2021-05-14T11:34:45-04:00'\n")
    expected = (
        f"{lab}: Subject.date_of_birth = 2022-01-01T00:00:00+00:00: after the session start "
        f"2021-05-14T11:34:45-04:00 (NWBFile.session_start_time in {user}); expected the date "
        "the animal was born, before the recording"
    )
    with pytest.raises(MetadataError, match=f"^{re.escape(expected)}$"):
        resolve_metadata(session, lab_file=lab, user_file=user)
    fixed = {"Subject": {"date_of_birth": "2021-01-01T00:00:00+00:00"}}
    resolve_metadata(session, lab_file=lab, user_file=user, overrides=fixed)  # the dict wins
    with pytest.raises(MetadataError, match=r"^metadata: Subject.date_of_birth"):
        resolve_metadata(session, overrides={"Subject": {"date_of_birth": "2030-01-01T00:00:00Z"}})


def test_conversion_refuses_a_late_birth_before_decoding(session, tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("Subject:\n  date_of_birth: '2030-01-01T00:00:00+00:00'\n")
    out = tmp_path / "out.nwb"
    with pytest.raises(MetadataError, match=rf"^{re.escape(str(user))}: Subject.date_of_birth"):
        convert_session(session.root, out, metadata_path=user)
    assert not out.exists() and not list(tmp_path.glob("*.nwb*"))
