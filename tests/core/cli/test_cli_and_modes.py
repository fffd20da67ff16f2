"""Command line, explicit file lists, mismatched counts and the folder status a watcher uses."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import struct
from dataclasses import replace

import numpy as np
import pytest
from support import SMALL_SCOPE, read_nwb

from miniscope_core import (
    ConversionOptions,
    FrameCountMismatch,
    MiniscopeFormatError,
    convert_session,
    session_from_files,
)
from miniscope_core.cli import main
from miniscope_core.collection.status import folder_status
from miniscope_core.daq.avi import avi_finalised, avi_frame_size
from miniscope_core.daq.video import count_frames
from miniscope_core.testing.synthetic import AcquisitionSpec, write_acquisition


def test_cli_convert_and_inspect(two_acquisitions, tmp_path, capsys):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    assert main(["convert", str(root), "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "OnePhotonSeriesMiniscope: 240 frames" in printed and out.is_file()
    assert main(["inspect", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    scope = report["acquisitions"][1]["devices"][0]
    assert (scope["device"], scope["decoded_frames"], scope["timestamp_rows"]) == (
        "Miniscope",
        120,
        120,
    )
    assert scope["dropped_frames"] == 2 and report["problems"] == []


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["convert", str(tmp_path), "-o", str(tmp_path / "x.nwb")]) == 2
    assert "holds no Miniscope acquisition" in capsys.readouterr().err


def _acquisition(tmp_path, **changes):
    spec = AcquisitionSpec(scopes=[replace(SMALL_SCOPE, **changes)], cameras=[])
    return write_acquisition(tmp_path / "acq", spec)


def test_fewer_timestamp_rows_keeps_the_shorter_and_warns(tmp_path):
    truth = _acquisition(tmp_path)
    csv = truth.folder / "Miniscope" / "timeStamps.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-5]))  # 115 rows for 120 frames
    with pytest.warns(FrameCountMismatch, match=r"2\.avi: 20 decodable frames but .* lists 15"):
        result = convert_session(truth.folder, tmp_path / "o.nwb")
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 115}
    with pytest.raises(MiniscopeFormatError, match=r"2\.avi: 20 decodable frames"):
        convert_session(truth.folder, tmp_path / "s.nwb", ConversionOptions(strict=True))
    assert not (tmp_path / "s.nwb").exists()


def test_empty_video_in_the_middle_keeps_later_frames_on_their_times(tmp_path):
    truth = _acquisition(tmp_path)
    (truth.folder / "Miniscope" / "1.avi").write_bytes(b"")  # frames 50-99 lost
    out = tmp_path / "o.nwb"
    with pytest.warns(FrameCountMismatch, match=r"1\.avi: 0 decodable frames but .* lists 50"):
        convert_session(truth.folder, out)
    frames = list(truth.devices["Miniscope"].frames())
    keep = [*range(50), *range(100, 120)]
    times = truth.devices["Miniscope"].timestamps_ms
    with read_nwb(out) as nwb:
        series = nwb.acquisition["OnePhotonSeriesMiniscope"]
        np.testing.assert_array_equal(series.data[:], np.stack([frames[i].T for i in keep]))
        expected = (times[keep] - times.min()) / 1000.0
        np.testing.assert_array_equal(series.timestamps[:], expected)


def test_explicit_file_paths_with_and_without_timestamps(tmp_path):
    truth = _acquisition(tmp_path)
    device = truth.folder / "Miniscope"
    renamed = []
    for video in truth.devices["Miniscope"].videos:
        target = tmp_path / f"trial_{video.stem}.avi"
        target.write_bytes(video.read_bytes())
        renamed.append(target)
    session = session_from_files(renamed, device / "metaData.json", device / "timeStamps.csv")
    out = tmp_path / "explicit.nwb"
    convert_session(session, out)
    times = truth.devices["Miniscope"].timestamps_ms
    with read_nwb(out) as nwb:
        series = nwb.acquisition["OnePhotonSeriesMiniscope"]
        assert series.data.shape[0] == 120
        np.testing.assert_array_equal(series.timestamps[:], (times - times.min()) / 1000.0)
    regular = session_from_files(renamed, device / "metaData.json")
    convert_session(regular, tmp_path / "regular.nwb")
    with read_nwb(tmp_path / "regular.nwb") as nwb:
        stamps = nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[:]
        np.testing.assert_allclose(np.diff(stamps), 1 / 30.0)  # "30FPS" in metaData.json


def test_folder_status_sees_unfinished_and_missing_files(tmp_path):
    truth = _acquisition(tmp_path)
    status = folder_status(truth.folder)
    assert status.complete and status.acquisitions == ("acq",)
    last = truth.devices["Miniscope"].videos[-1]
    assert avi_finalised(last)
    data = bytearray(last.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)  # what an interrupted writer leaves
    last.write_bytes(bytes(data))
    status = folder_status(truth.folder)
    assert not status.complete and "unfinished videos: 2.avi" in status.reason
    last.unlink()
    status = folder_status(truth.folder)
    assert "has 2 videos, timestamps need 3" in status.reason


def test_folder_signature_changes_when_a_file_grows(tmp_path):
    truth = _acquisition(tmp_path)
    before = folder_status(truth.folder).signature
    csv = truth.folder / "Miniscope" / "timeStamps.csv"
    with csv.open("a") as handle:
        handle.write("120,4000,0\n")
    os.utime(csv, ns=(before.newest_mtime_ns + 10**9,) * 2)
    after = folder_status(truth.folder).signature
    assert after.n_bytes - before.n_bytes == len("120,4000,0\n")
    assert after.newest_mtime_ns == before.newest_mtime_ns + 10**9
    assert after.n_files == before.n_files


def test_frame_counts_of_finished_and_unfinished_videos(tmp_path):
    truth = _acquisition(tmp_path)
    videos = truth.devices["Miniscope"].videos
    assert [count_frames(v) for v in videos] == [50, 50, 20]
    assert avi_frame_size(videos[0]) == (64, 48)  # width, height: read from the header
    data = bytearray(videos[0].read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    unfinished = tmp_path / "unfinished.avi"
    index = data.rfind(b"idx1")
    unfinished.write_bytes(bytes(data[: index - 10]))  # interrupted: no index, last packet cut
    assert not avi_finalised(unfinished)
    assert count_frames(unfinished) == 49  # decoded: the cut packet does not count


def test_miniscope_dagster_without_dagster_says_how_to_install_it(monkeypatch, capsys):
    entry = importlib.import_module("miniscope_assets")  # the console script's target
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dagster" else real(name, *a)
    )
    assert entry.main(["sessions"]) == 2
    err = capsys.readouterr().err
    assert err == "error: miniscope-dagster needs Dagster: pip install 'miniscope-nwb[dagster]'\n"
