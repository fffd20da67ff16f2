"""The inventory: every file of a session used or left out with its reason, and the inputs that
used to be lost silently (linked acquisitions, unlisted scopes, framesPerFile, fractional ms)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from support import read_nwb

from miniscope_core import (
    ConversionOptions,
    MiniscopeFormatError,
    convert_session,
    discover,
    inspect_session,
)
from miniscope_core.cli import main
from miniscope_core.errors import InventoryWarning, MiniscopeWarning
from miniscope_core.testing.synthetic import CameraSpec, ScopeSpec, write_session

SCOPE = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=10, head_orientation=False)
CAMERA = CameraSpec(n_frames=20, height=12, width=16, frames_per_file=10)
SERIES = "OnePhotonSeriesMiniscope"


def _session(root: Path, n: int = 2, cameras: bool = True):
    return write_session(root, n_acquisitions=n, scope=SCOPE, cameras=[CAMERA] if cameras else [])


def _frames(path: Path, series: str = SERIES) -> tuple[np.ndarray, np.ndarray]:
    with read_nwb(path) as nwb:
        item = nwb.acquisition[series]
        return item.data[:], item.timestamps[:]


def _expected_pixels(truths, name: str = "Miniscope") -> np.ndarray:
    return np.stack([f.T for t in truths for f in t.devices[name].frames()])


def _meta(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del meta[key]
    path.write_text(json.dumps(meta))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- links


def test_an_acquisition_behind_a_link_is_converted_whole(tmp_path):
    truths = _session(tmp_path / "s")
    elsewhere = tmp_path / "other_disk" / truths[1].folder.name
    elsewhere.parent.mkdir()
    shutil.move(truths[1].folder, elsewhere)
    truths[1].folder.symlink_to(elsewhere, target_is_directory=True)
    before = _tree(elsewhere)
    session = discover(tmp_path / "s")
    assert [a.label for a in session.acquisitions] == [t.folder.name for t in truths]
    entry = next(e for e in session.inventory.entries if e.path == truths[1].folder)
    assert entry.used and entry.link == str(elsewhere)
    result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames[SERIES] == 80
    pixels, _ = _frames(tmp_path / "out.nwb")
    np.testing.assert_array_equal(pixels, _expected_pixels(truths))
    assert _tree(elsewhere) == before


def test_a_session_of_linked_acquisitions_only_is_still_a_session(tmp_path):
    truths = _session(tmp_path / "store")
    (tmp_path / "raw" / "s").mkdir(parents=True)
    for truth in truths:
        (tmp_path / "raw" / "s" / truth.folder.name).symlink_to(truth.folder)
    session = discover(tmp_path / "raw" / "s")
    assert len(session.acquisitions) == 2


def test_links_back_into_the_session_and_broken_links_are_said_not_followed(tmp_path):
    truths = _session(tmp_path / "s", n=1)
    device = truths[0].devices["Miniscope"].folder
    (device / "loop").symlink_to(tmp_path / "s")
    (device / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.warns(InventoryWarning) as caught:
        session = discover(tmp_path / "s")
    messages = [str(w.message) for w in caught]
    assert any("loop: a link that links back into" in m for m in messages)
    assert any("gone: a broken link" in m for m in messages)
    assert len(session.acquisitions) == 1
    assert len(session.acquisitions[0].device("Miniscope").videos) == 4


def test_two_links_to_one_acquisition_read_it_once(tmp_path):
    truths = _session(tmp_path / "store", n=1)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a").symlink_to(truths[0].folder)
    (tmp_path / "s" / "b").symlink_to(truths[0].folder)
    with pytest.warns(InventoryWarning, match=r"s/b: a link that leads to .* already read"):
        session = discover(tmp_path / "s")
    assert [a.label for a in session.acquisitions] == ["a"]


# ---------------------------------------------------------------- what is a scope


@pytest.mark.parametrize("device_type", ["Miniscope_LFOV", "MiniLFOV", "Siminiscope_1024X768"])
def test_a_scope_the_session_does_not_list_is_stored_as_imaging(tmp_path, device_type):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    folder = truths[0].folder
    _meta(folder / "metaData.json", miniscopes=[])
    _meta(folder / "Miniscope" / "metaData.json", deviceType=device_type)
    result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames == {SERIES: 40}


def test_a_device_of_unknown_kind_that_nobody_lists_is_refused(tmp_path):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    folder = truths[0].folder
    _meta(folder / "metaData.json", miniscopes=[])
    _meta(folder / "Miniscope" / "metaData.json", deviceType="ProtoRig9")
    with pytest.raises(MiniscopeFormatError, match=r"Miniscope/metaData.json: deviceType 'Proto"):
        discover(tmp_path / "s")


def test_a_scope_listed_as_a_camera_is_stored_as_imaging_and_said(tmp_path):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    _meta(truths[0].folder / "metaData.json", miniscopes=[], cameras=["Miniscope"])
    with pytest.warns(InventoryWarning, match="is a miniscope but the session lists"):
        result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames == {SERIES: 40}


# ---------------------------------------------------------------- framesPerFile


@pytest.mark.parametrize("value", [None, 0, -1, 2**63, "abc", 2.5, True, 1000])
def test_frames_per_file_comes_from_the_videos_when_it_is_missing_or_wrong(tmp_path, value):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    meta = truths[0].devices["Miniscope"].folder / "metaData.json"
    _meta(meta, framesPerFile=value)
    with pytest.warns(MiniscopeWarning, match=r"Miniscope/metaData.json: framesPerFile"):
        convert_session(tmp_path / "s", tmp_path / "out.nwb")
    pixels, times = _frames(tmp_path / "out.nwb")
    np.testing.assert_array_equal(pixels, _expected_pixels(truths))
    expected = truths[0].devices["Miniscope"].timestamps_ms
    np.testing.assert_allclose(times - times[0], (expected - expected[0]) / 1000)


def test_a_missing_middle_video_is_named_and_later_frames_keep_their_times(tmp_path):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    device = truths[0].devices["Miniscope"]
    device.videos[1].unlink()
    with pytest.warns(MiniscopeWarning, match=r"10 of 40 rows belong to no video file \(1.avi"):
        convert_session(tmp_path / "s", tmp_path / "out.nwb")
    pixels, times = _frames(tmp_path / "out.nwb")
    assert len(pixels) == 30
    rows = np.r_[0:10, 20:40]
    start = truths[0].msec_since_epoch
    first = min(start + device.timestamps_ms.min(), start)
    np.testing.assert_allclose(times, (start + device.timestamps_ms[rows] - first) / 1000)


# ---------------------------------------------------------------- timestamps


def test_fractional_milliseconds_are_kept(tmp_path):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    csv = truths[0].devices["Miniscope"].folder / "timeStamps.csv"
    lines = csv.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    times = [float(row[1]) + 0.25 * (i % 4) for i, row in enumerate(rows)]
    csv.write_text(
        "\n".join([lines[0]] + [f"{r[0]},{t},{r[2]}" for r, t in zip(rows, times, strict=True)])
    )
    convert_session(tmp_path / "s", tmp_path / "out.nwb")
    _, stored = _frames(tmp_path / "out.nwb")
    np.testing.assert_allclose(np.diff(stored) * 1000, np.diff(times), atol=1e-6)


def test_a_cameras_damaged_row_is_repaired_and_counted(tmp_path):
    truths = _session(tmp_path / "s", n=1)
    csv = truths[0].devices["BehavCam_2"].folder / "timeStamps.csv"
    lines = csv.read_text().splitlines()
    lines[5] = "4,garbage,0"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.warns(MiniscopeWarning, match=r"1 of 20 rows damaged .*lines 6\)"):
        result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames[SERIES] == 40
    with read_nwb(tmp_path / "out.nwb") as nwb:
        camera = next(iter(nwb.acquisition[k] for k in nwb.acquisition if "Behav" in k))
        stamps = camera.timestamps[:]
    assert len(stamps) == 20 and np.all(np.diff(stamps) > 0)
    assert stamps[4] == pytest.approx((stamps[3] + stamps[5]) / 2)


def test_a_scope_time_that_goes_back_is_named_before_decoding(tmp_path, capsys):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    csv = truths[0].devices["Miniscope"].folder / "timeStamps.csv"
    lines = csv.read_text().splitlines()
    shifted = [lines[0], *lines[1:21]]
    shifted += [f"{row[0]},{int(row[1]) - 2000},{row[2]}" for row in
                (line.split(",") for line in lines[21:])]  # fmt: skip
    csv.write_text("\n".join(shifted) + "\n")
    assert main(["inspect", str(tmp_path / "s"), "--no-decode"]) == 0
    assert "timeStamps.csv: row 22: time" in capsys.readouterr().out
    code = main(["convert", str(tmp_path / "s"), "-o", str(tmp_path / "o.nwb"), "--quiet"])
    assert code == 2 and "timeStamps.csv: row 22" in capsys.readouterr().err
    assert not (tmp_path / "o.nwb").exists()


def test_a_header_only_timestamp_table_is_said_as_such(tmp_path):
    truths = _session(tmp_path / "s", n=1)
    csv = truths[0].devices["BehavCam_2"].folder / "timeStamps.csv"
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    with pytest.warns(MiniscopeWarning, match=r"timeStamps.csv: has a header but no rows"):
        convert_session(tmp_path / "s", tmp_path / "out.nwb")


# ---------------------------------------------------------------- leftovers


def _with_leftovers(tmp_path: Path):
    truths = _session(tmp_path / "s", n=1)
    device = truths[0].devices["Miniscope"].folder
    shutil.copy(device / "0.avi", device / "1.avi.bak")
    (device / ".DS_Store").write_bytes(b"\0junk")
    tracker = truths[0].folder / "behaviorTracker"
    tracker.mkdir()
    (tracker / "pose.csv").write_text("x,y\n")
    (truths[0].folder / "extra").mkdir()
    (truths[0].folder / "extra" / "timeStamps.csv").write_text("Frame Number,Time\n0,1\n1,2\n")
    return truths


def test_every_file_is_used_or_left_out_with_a_reason(tmp_path, capsys):
    _with_leftovers(tmp_path)
    report = inspect_session(tmp_path / "s", decode=False)
    warned = sorted("/".join(problem.split(": ")[0].split("/")[-2:]) for problem in report.problems)
    assert warned == ["Miniscope/1.avi.bak", "extra/timeStamps.csv"]
    left = {row["path"].split("/", 1)[1]: row for row in report.left_out}
    assert set(left) == {
        "Miniscope/1.avi.bak", "Miniscope/.DS_Store", "behaviorTracker", "behaviorTracker/pose.csv",
        "extra", "extra/timeStamps.csv", "experiment",
    }  # fmt: skip
    assert left["experiment"]["reason"] == "an empty folder"
    assert left["Miniscope/1.avi.bak"]["recording_data"]
    assert not left["behaviorTracker/pose.csv"]["recording_data"]  # a header, no rows
    session = discover(tmp_path / "s")
    listed = {e.path for e in session.inventory.entries}
    on_disk = set((tmp_path / "s").rglob("*"))
    assert listed == on_disk
    assert main(["inspect", str(tmp_path / "s"), "--json", "--no-decode"]) == 0
    assert len(json.loads(capsys.readouterr().out)["left_out"]) == 7


def test_left_out_data_is_in_the_files_notes_and_refused_with_strict(tmp_path, capsys):
    _with_leftovers(tmp_path)
    convert_session(tmp_path / "s", tmp_path / "out.nwb")
    with read_nwb(tmp_path / "out.nwb") as nwb:
        assert "Miniscope/1.avi.bak: a video that is no device's numbered N.avi" in nwb.notes
    code = main(["convert", str(tmp_path / "s"), "-o", str(tmp_path / "st.nwb"), "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and "1.avi.bak: a video" in err and "(and 1 more such entries)" in err
    assert not (tmp_path / "st.nwb").exists()


@pytest.mark.parametrize(("key", "value"), [("frameRate", "30FSP"), ("frameRate", "fast"),
                                            ("gain", "loud"), ("led0", "bright")])  # fmt: skip
def test_a_setting_the_tool_cannot_read_is_said_naming_file_and_key(tmp_path, key, value):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    _meta(truths[0].devices["Miniscope"].folder / "metaData.json", **{key: value})
    report = inspect_session(tmp_path / "s", decode=False)
    assert any(f"Miniscope/metaData.json: {key} {json.dumps(value)}" in p for p in report.problems)
    result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames == {SERIES: 40}
    assert any(f"metaData.json: {key} " in warning for warning in result.warnings)


def test_a_linked_acquisition_growing_changes_the_sessions_signature(tmp_path):
    from miniscope_core import signature

    truths = _session(tmp_path / "store", n=1)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a").symlink_to(truths[0].folder)
    before = signature(tmp_path / "s")
    assert before.n_files == len([p for p in truths[0].folder.rglob("*") if p.is_file()])
    with (truths[0].devices["Miniscope"].folder / "timeStamps.csv").open("a") as table:
        table.write("40,99999,0\n")
    assert signature(tmp_path / "s").files != before.files


def test_a_lone_device_folder_with_its_own_date_fields_has_a_start(tmp_path):
    truths = _session(tmp_path / "s", n=1, cameras=False)
    device = tmp_path / "lone"
    shutil.copytree(truths[0].devices["Miniscope"].folder, device)
    start = {"year": 2021, "month": 8, "day": 15, "hour": 15, "minute": 15, "second": 47, "msec": 5}
    _meta(device / "metaData.json", recordingStartTime=start)
    with pytest.warns(MiniscopeWarning, match=r"lone/metaData.json: .*msecSinceEpoch"):
        session = discover(device)
    begun = session.acquisitions[0].start.as_datetime()
    assert (begun.year, begun.hour, begun.minute, begun.microsecond) == (2021, 15, 15, 5000)


@pytest.mark.parametrize("line", [1, 2])  # the first two frames' rows
def test_a_cameras_damaged_first_rows_are_repaired_not_refused(tmp_path, line):
    truths = _session(tmp_path / "s", n=1)
    csv = truths[0].devices["BehavCam_2"].folder / "timeStamps.csv"
    lines = csv.read_text().splitlines()
    for row in range(1, line + 1):
        lines[row] = f"{row - 1},nan,0"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.warns(MiniscopeWarning, match=rf"{line} of 20 rows damaged"):
        result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames[SERIES] == 40
    with read_nwb(tmp_path / "out.nwb") as nwb:
        camera = next(iter(nwb.acquisition[k] for k in nwb.acquisition if "Behav" in k))
        stamps = camera.timestamps[:]
    assert len(stamps) == 20 and np.all(np.diff(stamps) > 0)
    step = np.median(np.diff(stamps[line:]))
    assert stamps[0] == pytest.approx(stamps[line] - line * step)


def test_a_folder_that_cannot_be_listed_is_said_and_refused_with_strict(tmp_path, monkeypatch):
    import miniscope_core.daq.inventory as inventory

    truths = _session(tmp_path / "s", n=1)
    locked = truths[0].folder / "extra"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):  # as root no permission can be taken away: refuse the listing instead
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(inventory.os, "scandir", scandir)
    with pytest.warns(InventoryWarning, match=r"extra: cannot be listed \(Permission denied\)"):
        result = convert_session(tmp_path / "s", tmp_path / "out.nwb")
    assert result.series_frames[SERIES] == 40
    with pytest.raises(MiniscopeFormatError, match=r"extra: cannot be listed"):
        convert_session(tmp_path / "s", tmp_path / "st.nwb", ConversionOptions(strict=True))
    assert not (tmp_path / "st.nwb").exists()
