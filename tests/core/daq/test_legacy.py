"""Legacy Miniscope DAQ (V3 era) recordings: parsed, found, converted like any other session."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support import LATER, acquisition, read_nwb, v3_cohort

from miniscope_core import (
    ConversionOptions,
    MiniscopeFormatError,
    OutputError,
    check_file,
    convert_session,
    discover,
    find_sessions,
    list_sessions,
)
from miniscope_core.cli import main
from miniscope_core.daq.legacy import (
    UnreliableClockWarning,
    read_settings,
    read_timestamp_dat,
    reliable_times,
)
from miniscope_core.testing.synthetic_legacy import (
    LegacySpec,
    LegacyTruth,
    write_dib_avi,
    write_legacy_recording,
)


def first_ms(truth: LegacyTruth) -> int:
    """The session's first frame, in ms since Record: NWB time zero."""
    return int(min(truth.scope_ms[0], truth.camera_ms[0]))


def test_timestamp_dat_and_settings_are_read_by_name(tmp_path):
    truth = write_legacy_recording(tmp_path)
    table = read_timestamp_dat(truth.folder / "timestamp.dat")
    assert list(table.columns) == ["camNum", "frameNum", "sysClock", "buffer"]
    assert len(table) == 12 + 9 and table["camNum"].tolist()[:2] in ([0, 1], [1, 0])
    np.testing.assert_array_equal(table[table.camNum == 0].sysClock, truth.scope_ms)
    settings = read_settings(truth.folder / "settings_and_notes.dat")
    assert settings.values == {
        "animal": "v3mouse",
        "excitation": "37",
        "msCamExposure": "255",
        "recordLength": "0",
    }
    assert settings.notes == ((1, "tail pinch"), (2, "LED excitation intensity set to 40"))
    path = truth.folder / "settings_and_notes.dat"  # an ANSI (cp1252) PC, a note over two lines
    path.write_bytes(
        path.read_bytes().replace(b"tail pinch", "queue pincée\r\nfort".encode("cp1252"))
    )
    assert read_settings(path).notes[0] == (1, "queue pincée fort")


@pytest.mark.parametrize("scope_cam, camera_cam", [(0, 1), (1, 0), (2, 5)])
def test_the_scope_is_the_camnum_whose_rows_match_the_mscam_frames(tmp_path, scope_cam, camera_cam):
    truth = write_legacy_recording(tmp_path, LegacySpec(scope_cam=scope_cam, camera_cam=camera_cam))
    (acq,) = discover(tmp_path).acquisitions
    scope, camera = acq.devices
    assert (scope.name, scope.kind, camera.name, camera.kind) == (
        "Miniscope", "miniscope", "BehavCam", "camera",
    )  # fmt: skip
    np.testing.assert_array_equal(scope.timestamps["time_ms"], truth.scope_ms)
    np.testing.assert_array_equal(camera.timestamps["time_ms"], truth.camera_ms)
    assert [v.name for v in scope.videos] == ["msCam1.avi"]
    assert acq.metadata["animalName"] == "v3mouse"


def test_a_first_row_clocked_from_a_stale_start_is_replaced_and_reported(tmp_path):
    raw = tmp_path / "raw"
    truth = write_legacy_recording(raw, LegacySpec(stale_first_rows=True))
    with pytest.warns(UnreliableClockWarning) as caught:
        (acq,) = discover(raw).acquisitions
    stale = [w for w in caught if issubclass(w.category, UnreliableClockWarning)]
    assert sorted(str(w.message).split("timestamp.dat: ")[1][:8] for w in stale) == [
        "camNum 0", "camNum 1",
    ]  # fmt: skip
    times = acq.devices[0].timestamps["time_ms"].to_numpy()
    np.testing.assert_array_equal(times[1:], truth.scope_ms[1:])
    assert times[0] == truth.scope_ms[1] - round(np.median(np.diff(truth.scope_ms[1:])))
    assert abs(times[0] - truth.scope_ms[0]) < 10  # the true grab time, within the jitter
    assert acq.devices[0].timestamps_source() == (
        "timestamp.dat camNum 0 (the first time in H9_M5_S3 estimated: its sysClock was stale)"
    )
    with pytest.warns(UnreliableClockWarning):
        result = convert_session(raw, tmp_path / "out.nwb", ConversionOptions(stub=True))
    assert sum("sysClock" in message for message in result.warnings) == 2  # in the result too
    with pytest.warns(UnreliableClockWarning), pytest.raises(OutputError):
        convert_session(raw, tmp_path / "out.nwb")  # exists: what was found is still said


@pytest.mark.parametrize(
    "first, kept",
    [(-6, -6), (20, 20), (-4_294_000, 0), (183_004, 0), (49, 49)],
)
def test_only_a_first_sysclock_that_cannot_be_a_first_frame_is_replaced(first, kept):
    clock = np.array([first, 50, 100, 150, 200])  # `%li` of a UINT: a stale time may be negative
    if first == kept:
        assert reliable_times(clock, Path("timestamp.dat"), 0)[0] == kept
    else:
        with pytest.warns(UnreliableClockWarning, match=f"first sysClock \\({first} ms\\)"):
            assert reliable_times(clock, Path("timestamp.dat"), 0)[0] == kept


def test_a_v3_recording_converts_with_its_times_settings_notes_and_linked_video(tmp_path):
    truth = write_legacy_recording(tmp_path / "raw")
    out = tmp_path / "out.nwb"
    result = convert_session(tmp_path / "raw", out)
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 12}
    zero = first_ms(truth)
    with read_nwb(out) as nwb:
        start = truth.spec.start + timedelta(milliseconds=zero)
        assert nwb.session_start_time.replace(tzinfo=None) == start  # folder names + first frame
        scope = nwb.acquisition["OnePhotonSeriesMiniscope"]
        np.testing.assert_array_equal(scope.data[:].transpose(0, 2, 1), truth.scope)
        np.testing.assert_allclose(scope.timestamps[:], (truth.scope_ms - zero) / 1000)
        assert "timestamps from timestamp.dat camNum 0." in scope.description
        device = nwb.devices["Miniscope"]
        assert (device.deviceType, device.excitation, device.msCamExposure) == (
            "Miniscope_V3", 37, 255,
        )  # fmt: skip
        camera = nwb.acquisition["ImageSeriesBehavCam"]
        assert list(camera.external_file[:]) == ["raw/6_11_2019/H9_M5_S3/behavCam1.avi"]
        assert "timestamps from timestamp.dat camNum 1." in camera.description
        np.testing.assert_allclose(camera.timestamps[:], (truth.camera_ms - zero) / 1000)
        notes = nwb.events["notes"].to_dataframe()
        assert list(notes.annotation) == ["tail pinch", "LED excitation intensity set to 40"]
        np.testing.assert_allclose(notes.timestamp, [(1000 - zero) / 1000, (2000 - zero) / 1000])
        assert nwb.subject.subject_id == "v3mouse"


def test_embedded_frames_of_several_files_round_trip_exactly_into_a_valid_file(tmp_path):
    spec = LegacySpec(scope_frames=1003, scope_size=(8, 6), camera_frames=1001, camera_size=(6, 4))
    truth = write_legacy_recording(tmp_path / "raw", spec)
    assert sorted(p.name for p in truth.folder.glob("*.avi")) == [
        "behavCam1.avi", "behavCam2.avi", "msCam1.avi", "msCam2.avi",
    ]  # fmt: skip
    out = tmp_path / "out.nwb"
    subject = {"species": "Mus musculus", "sex": "F", "age": "P90D"}
    options = ConversionOptions(embed_cameras=True)
    convert_session(tmp_path / "raw", out, options, metadata={"Subject": subject})
    with read_nwb(out) as nwb:
        scope = nwb.acquisition["OnePhotonSeriesMiniscope"]
        np.testing.assert_array_equal(scope.data[:].transpose(0, 2, 1), truth.scope)
        camera = nwb.acquisition["ImageSeriesBehavCam"]
        np.testing.assert_array_equal(camera.data[:].transpose(0, 2, 1, 3), truth.camera)
        zero = first_ms(truth)
        np.testing.assert_allclose(camera.timestamps[-1], (truth.camera_ms[-1] - zero) / 1000)
    assert check_file(out).problems == ()  # pynwb schema, nwbinspector CRITICAL, read-back


def test_a_given_start_time_is_the_first_record_and_later_recordings_keep_their_distance(
    tmp_path,
):
    first = write_legacy_recording(tmp_path / "raw")
    later = write_legacy_recording(tmp_path / "raw", LATER)
    out = tmp_path / "out.nwb"
    given = datetime.fromisoformat("2019-06-11T09:05:03.500-07:00")
    convert_session(tmp_path / "raw", out, metadata={"NWBFile": {"session_start_time": given}})
    with read_nwb(out) as nwb:
        assert nwb.session_start_time == given
        times = nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[:]
        expected = np.concatenate([first.scope_ms, 600_000 + later.scope_ms]) / 1000
        np.testing.assert_allclose(times, expected)
        labels = nwb.intervals["acquisitions"].to_dataframe().label
        assert list(labels) == ["H9_M5_S3", "H9_M15_S3"]
        assert list(nwb.events["notes"].to_dataframe().annotation)[-1] == "later"


def test_renamed_folders_need_the_start_time_from_metadata(tmp_path, capsys):
    truth = write_legacy_recording(tmp_path / "raw")
    renamed = truth.folder.rename(truth.folder.parent / "session1")
    out = tmp_path / "out.nwb"
    assert main(["convert", str(renamed), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "M_D_YYYY/H<h>_M<m>_S<s> folder names" in err and not out.exists()
    meta = tmp_path / "meta.yaml"
    meta.write_text("NWBFile:\n  session_start_time: '2019-06-11T09:05:03+02:00'\n")
    assert main(["convert", str(renamed), "-o", str(out), "--metadata", str(meta), "--quiet"]) == 0
    with read_nwb(out) as nwb:
        assert nwb.session_start_time.isoformat() == "2019-06-11T09:05:03+02:00"
        assert nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[0] == truth.scope_ms[0] / 1000


def test_listing_and_inspect_find_v3_sessions(tmp_path, capsys):
    raw = tmp_path / "raw"
    v3_cohort(raw)
    day = "6_11_2019"
    assert find_sessions(raw) == [raw / "mouseA" / day, raw / "mouseB" / day, raw / "mouseC"]
    listed = list_sessions(raw)
    assert sorted(listed) == ["mouseA__6_11_2019", "mouseB__6_11_2019", "mouseC"]
    assert [a.name for a in listed["mouseA__6_11_2019"].acquisitions] == ["H9_M15_S3", "H9_M5_S3"]

    assert main(["inspect", str(raw / "mouseA"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [a["label"] for a in report["acquisitions"]] == ["H9_M5_S3", "H9_M15_S3"]
    scope = report["acquisitions"][0]["devices"][0]
    assert (scope["device_type"], scope["decoded_frames"], scope["timestamp_rows"]) == (
        "Miniscope_V3", 12, 12,
    )  # fmt: skip
    assert report["problems"] == []


def _truncate_timestamps(folder: Path) -> None:
    path = folder / "timestamp.dat"
    path.write_bytes(path.read_bytes()[:-9])  # the last row cut mid-way, as by a crash


def _drop_last_scope_frame(folder: Path) -> None:
    write_dib_avi(folder / "msCam1.avi", np.zeros((11, 12, 20), np.uint8))


def _add_qt_metadata(folder: Path) -> None:
    (folder / "metaData.json").write_text(json.dumps({"recordingStartTime": {}}))


def _add_qt_acquisition(folder: Path) -> None:
    acquisition(folder.parent / "11_34_45")


def _add_other_animal(folder: Path) -> None:
    write_legacy_recording(folder.parent.parent, replace(LATER, animal="other"))


BROKEN = {
    "animals": (_add_other_animal, "6_11_2019: holds acquisitions of different animals"),
    "truncated": (_truncate_timestamps, r"timestamp.dat: line \d+: \w+ is not a number"),
    "count": (_drop_last_scope_frame, "timestamp.dat: frame count mismatch: the msCam"),
    "settings": (
        lambda f: (f / "settings_and_notes.dat").unlink(),
        "settings_and_notes.dat: is missing",
    ),
    "mixed_folder": (_add_qt_metadata, "H9_M5_S3: mixes a DAQ-QT metaData.json with legacy V3"),
    "mixed_session": (_add_qt_acquisition, r"6_11_2019: mixes legacy V3 recordings \(H9_M5_S3\)"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_v3_recording_is_one_line_naming_the_file(tmp_path, capsys, broken):
    truth = write_legacy_recording(tmp_path / "raw")
    damage, message = BROKEN[broken]
    damage(truth.folder)
    out = tmp_path / "out.nwb"
    assert main(["convert", str(truth.folder.parent), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert err.startswith("error: ")  # one line, no traceback
    with pytest.raises(MiniscopeFormatError, match=message):
        discover(truth.folder.parent)


def test_equal_frame_counts_leave_the_scope_undecided(tmp_path):
    truth = write_legacy_recording(tmp_path, LegacySpec(camera_frames=12))
    with pytest.raises(MiniscopeFormatError, match="cannot tell which camNum is the Miniscope"):
        discover(truth.folder)
