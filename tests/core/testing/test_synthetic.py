"""The synthetic DAQ writer must produce what the real software writes, and decodable truth."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from support import real_data

from miniscope_core.testing.synthetic import (
    AcquisitionSpec,
    CameraSpec,
    ScopeSpec,
    camera_frames,
    imaging_frames,
    write_acquisition,
    write_demo_session,
    write_session,
)

EASTERN_STANDARD = timezone(timedelta(hours=-5))
REAL_2C1 = "Miniscope2C/2color_pilot_mCherry/2C1/2021_05_14/11_34_45"


def decode(path: Path, shape: tuple[int, ...]) -> tuple[dict, list[np.ndarray]]:
    color = len(shape) == 3
    reader = imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgb24" if color else "gray", bits_per_pixel=24 if color else 8
    )
    meta = next(reader)
    return meta, [np.frombuffer(raw, np.uint8).reshape(shape) for raw in reader]


def csv_rows(path: Path) -> tuple[str, list[list[str]]]:
    header, *rows = path.read_text().splitlines()
    return header, [row.split(",") for row in rows]


def without_paths(path: Path) -> list[str]:
    """JSON lines except the stale acquisition-PC paths, which differ by design."""
    return [line for line in path.read_text().splitlines() if "Directory" not in line]


def test_frame_i_is_the_same_from_any_start() -> None:
    movie = list(imaging_frames(300, 24, 32, seed=5))
    assert movie[0].dtype == np.uint8 and movie[0].shape == (24, 32)
    assert 50 < np.mean(movie) < 110
    for index in (1, 255, 256, 299):
        assert np.array_equal(next(imaging_frames(1, 24, 32, seed=5, start=index)), movie[index])
    assert not np.array_equal(next(imaging_frames(1, 24, 32, seed=6)), movie[0])
    camera = list(camera_frames(10, 24, 32, seed=2))
    assert camera[0].shape == (24, 32, 3)
    assert np.array_equal(next(camera_frames(1, 24, 32, seed=2, start=7)), camera[7])


@pytest.mark.parametrize(("codec", "decoder"), [("FFV1", "ffv1"), ("GREY", "rawvideo")])
def test_lossless_videos_round_trip_exactly(tmp_path: Path, codec: str, decoder: str) -> None:
    scope = ScopeSpec(codec=codec, n_frames=25, height=24, width=32, frames_per_file=10, seed=3)
    truth = write_acquisition(tmp_path, AcquisitionSpec(scopes=[scope], cameras=[]))
    device = truth.devices["Miniscope"]
    assert [p.name for p in device.videos] == ["0.avi", "1.avi", "2.avi"]
    decoded = []
    for path in device.videos:
        meta, frames = decode(path, (24, 32))
        assert (meta["codec"], meta["fps"]) == (decoder, 60.0)
        assert codec.encode() in path.read_bytes()[:512]  # the FourCC the DAQ writes
        decoded.append(frames)
    assert [len(frames) for frames in decoded] == [10, 10, 5]
    expected = list(device.frames())
    assert all(np.array_equal(a, b) for a, b in zip(sum(decoded, []), expected, strict=True))


def test_csv_files_look_like_the_daq_software(tmp_path: Path) -> None:
    scope = ScopeSpec(n_frames=40, dropped_frames={4: 2}, zero_quaternion_rows=[0, 7])
    camera = CameraSpec(n_frames=30, gaps={10: 1400.0})
    spec = AcquisitionSpec(
        scopes=[scope], cameras=[camera], notes=[(500, "tail pinch")], daq_frame_number=True
    )
    truth = write_acquisition(tmp_path, spec)

    header, rows = csv_rows(tmp_path / "Miniscope" / "timeStamps.csv")
    assert header == "Frame Number,Time Stamp (ms),Buffer Index,DAQ Frame Number"
    assert len(rows) == 40 and [int(r[0]) for r in rows] == list(range(40))
    times = np.array([int(r[1]) for r in rows])
    assert -30 <= times[0] <= -5 and (times[1:] >= 0).all() and (np.diff(times) >= 0).all()
    assert np.array_equal(times, truth.devices["Miniscope"].timestamps_ms)
    assert times[5] - times[4] > 2.5 * scope.interval_ms
    daq = np.array([int(r[3]) for r in rows])
    assert np.diff(daq).tolist() == [1] * 4 + [3] + [1] * 34

    header, rows = csv_rows(tmp_path / "Miniscope" / "headOrientation.csv")
    assert header == "Time Stamp (ms),qw,qx,qy,qz"
    assert [int(r[0]) for r in rows] == times.tolist()
    assert ",".join(rows[7][1:]) == "0,0,0,0"
    norms = np.linalg.norm(np.array([[float(v) for v in r[1:]] for r in rows]), axis=1)
    assert norms[[0, 7]].tolist() == [0, 0] and np.allclose(np.delete(norms, [0, 7]), 1, atol=1e-3)

    header, rows = csv_rows(tmp_path / "BehavCam_2" / "timeStamps.csv")
    assert header == "Frame Number,Time Stamp (ms),Buffer Index" and len(rows) == 30
    assert int(rows[11][1]) - int(rows[10][1]) > 1400
    assert (tmp_path / "notes.csv").read_text() == "Time Stamp (ms), Note\n500,tail pinch\n"
    assert not (tmp_path / "BehavCam_2" / "headOrientation.csv").exists()
    assert list((tmp_path / "experiment").iterdir()) == []


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_start_time_fields_match_the_utc_instant(tmp_path: Path, layout: str) -> None:
    start = datetime(2022, 2, 18, 10, 33, 33, 877000, tzinfo=EASTERN_STANDARD)
    scope = ScopeSpec(n_frames=2, height=8, width=8)
    write_acquisition(tmp_path, AcquisitionSpec(start=start, scopes=[scope], layout=layout))
    meta = json.loads((tmp_path / "metaData.json").read_text())
    fields = meta["recordingStartTime"] if layout == "nested" else meta
    assert fields["msecSinceEpoch"] == 1645198413877  # the real m02 session started then
    local = datetime(*(fields[k] for k in ("year", "month", "day", "hour", "minute", "second")))
    local += timedelta(milliseconds=fields["msec"])
    utc = datetime(1970, 1, 1) + timedelta(milliseconds=fields["msecSinceEpoch"])
    assert local - utc == timedelta(hours=-5)
    assert meta["cameras"] == ["BehavCam 2"] and (tmp_path / "BehavCam_2").is_dir()
    device = json.loads((tmp_path / "BehavCam_2" / "metaData.json").read_text())
    assert device["deviceName"] == "BehavCam 2" and device["compression"] == "MJPG"


def test_json_text_matches_a_real_session_byte_for_byte(tmp_path: Path) -> None:
    real = real_data(REAL_2C1)
    start = datetime(2021, 5, 14, 11, 34, 45, 103000, tzinfo=timezone(timedelta(hours=-4)))
    scopes = [
        ScopeSpec(name=name, n_frames=2, height=8, width=8, codec="GREY", gain=gain, led0=led0)
        for name, gain, led0 in (("miniscope_side", 2, 50), ("miniscope_top", 1, 10))
    ]
    spec = AcquisitionSpec(
        start=start, scopes=scopes, cameras=[], animal="2C1", experiment="2color_pilot_mCherry"
    )
    write_acquisition(tmp_path, spec)
    for name in ("metaData.json", "miniscope_side/metaData.json"):
        assert without_paths(tmp_path / name) == without_paths(real / name)
    assert (tmp_path / "notes.csv").read_bytes() == b""


def test_session_layout_and_seeds(tmp_path: Path) -> None:
    scope = ScopeSpec(n_frames=5, height=8, width=8)
    truths = write_session(
        tmp_path, n_acquisitions=2, scope=scope, cameras=[CameraSpec(n_frames=5)]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["11_34_45", "11_37_45"]
    assert truths[1].msec_since_epoch - truths[0].msec_since_epoch == 180_000
    assert [t.devices["Miniscope"].spec.seed for t in truths] == [0, 1]
    assert (tmp_path / "11_37_45" / "BehavCam_2" / "0.avi").is_file()


def test_demo_session_has_several_files_per_device(tmp_path: Path) -> None:
    session = write_demo_session(tmp_path)
    acquisitions = sorted(p for p in session.iterdir() if p.is_dir())
    assert len(acquisitions) == 2
    for acquisition in acquisitions:
        assert sorted(p.name for p in (acquisition / "Miniscope").glob("*.avi")) == [
            "0.avi",
            "1.avi",
            "2.avi",
        ]
        assert (acquisition / "notes.csv").read_text().startswith("Time Stamp (ms), Note\n")
