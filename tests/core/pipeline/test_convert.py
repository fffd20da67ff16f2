"""Conversion of synthetic sessions: pixels, times, gaps and layout are what the user relies on."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pynwb import validate
from support import SMALL_SCOPE, read_nwb

from miniscope_core import ConversionOptions, convert_session
from miniscope_core.daq.video import open_video
from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    CameraSpec,
    write_acquisition,
    write_session,
)


def _expected_frames(truths, folder: str = "Miniscope") -> np.ndarray:
    """Generator frames of every acquisition, in NWB's (frame, width, height) order."""
    frames = [f.T for truth in truths for f in truth.devices[folder].frames()]
    return np.stack(frames)


@pytest.mark.parametrize("codec", ["FFV1", "GREY"])
def test_pixels_round_trip_exactly(tmp_path: Path, codec: str) -> None:
    truths = write_session(
        tmp_path / "s", n_acquisitions=2, scope=replace(SMALL_SCOPE, codec=codec), cameras=[]
    )
    out = tmp_path / "out.nwb"
    convert_session(tmp_path / "s", out)
    with read_nwb(out) as nwb:
        series = nwb.acquisition["OnePhotonSeriesMiniscope"]
        assert series.data.dtype == np.uint8
        assert series.data.shape == (240, 64, 48)  # (frames, width, height)
        assert list(series.dimension[:]) == [64, 48]
        np.testing.assert_array_equal(series.data[:], _expected_frames(truths))
        assert series.data.chunks == (8, 64, 48)


def test_timestamps_keep_real_gaps_and_start_at_earliest_sample(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    convert_session(root, out)
    with read_nwb(out) as nwb:
        scope = nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[:]
        camera = nwb.acquisition["ImageSeriesBehavCam2"].timestamps[:]
        all_ms = [
            t.msec_since_epoch + d.timestamps_ms.min() for t in truths for d in t.devices.values()
        ]
        start_ms = min(all_ms)
        assert nwb.session_start_time.utcoffset().total_seconds() == -4 * 3600
        assert round(nwb.session_start_time.timestamp() * 1000) == start_ms
        for series, folder in ((scope, "Miniscope"), (camera, "BehavCam_2")):
            epoch = np.concatenate(
                [t.msec_since_epoch + t.devices[folder].timestamps_ms for t in truths]
            )
            np.testing.assert_array_equal(series, (epoch - start_ms) / 1000.0)
        assert scope.min() >= 0 and min(scope.min(), camera.min()) == 0.0
        second = truths[1].devices["Miniscope"].timestamps_ms.size
        assert scope[-second] == pytest.approx(180.0, abs=0.2)  # the second acquisition
        assert np.all(np.diff(scope) >= 0)


def test_dropped_frames_and_acquisitions_tables(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    result = convert_session(root, out)
    with read_nwb(out) as nwb:
        dropped = nwb.intervals["dropped_frames"].to_dataframe()
        scope = dropped[dropped.device == "Miniscope"]
        assert list(scope.missing_frames) == [2, 2]  # {30: 2} in both acquisitions
        camera = dropped[dropped.device == "BehavCam 2"]
        assert len(camera) == 2 and (camera.stop_time - camera.start_time > 1.4).all()
        assert result.dropped_frames == int(dropped.missing_frames.sum())
        acquisitions = nwb.intervals["acquisitions"].to_dataframe()
        assert list(acquisitions.label) == [t.folder.name for t in truths]
        assert acquisitions.start_time.iloc[1] == pytest.approx(180.0, abs=0.2)


def test_head_orientation_drops_zero_rows(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    convert_session(root, out)
    quats = np.concatenate([t.devices["Miniscope"].quaternions for t in truths])
    present = quats[np.any(quats != 0, axis=1)]
    with read_nwb(out) as nwb:
        series = nwb.processing["behavior"]["TimeSeriesMiniscopeHeadOrientationMiniscope"]
        np.testing.assert_allclose(series.data[:], present)
        assert len(series.timestamps) == len(quats) - 4  # rows 0 and 1 zero in each acquisition


def test_cameras_are_linked_relative_to_the_nwb_file(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "nwb" / "out.nwb"
    convert_session(root, out)
    with read_nwb(out) as nwb:
        series = nwb.acquisition["ImageSeriesBehavCam2"]
        files = list(series.external_file[:])
        videos = [v for t in truths for v in t.devices["BehavCam_2"].videos]
        assert [(out.parent / f).resolve() for f in files] == [v.resolve() for v in videos]
        assert not any(os.path.isabs(f) for f in files)
        assert list(series.starting_frame[:]) == [0, 40, 80, 90, 130, 170]
        assert len(series.timestamps) == 180


def test_embedded_cameras_store_decoded_rgb(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    convert_session(root, out, ConversionOptions(embed_cameras=True))
    video = truths[0].devices["BehavCam_2"].videos[0]
    first = np.stack([f.swapaxes(0, 1) for f in open_video(video, color=True).frames])
    with read_nwb(out) as nwb:
        data = nwb.acquisition["ImageSeriesBehavCam2"].data
        assert data.shape == (180, 32, 24, 3)
        np.testing.assert_array_equal(data[: len(first)], first)


def test_per_acquisition_series(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "out.nwb"
    result = convert_session(root, out, ConversionOptions(per_acquisition=True))
    names = [f"OnePhotonSeriesMiniscope_{t.folder.name}" for t in truths]
    assert {n: result.series_frames[n] for n in names} == {n: 120 for n in names}
    with read_nwb(out) as nwb:
        second = nwb.acquisition[names[1]]
        np.testing.assert_array_equal(second.data[:], _expected_frames(truths[1:]))
        assert second.timestamps[0] == pytest.approx(180.0, abs=0.2)


def test_notes_become_an_events_table(tmp_path):
    spec = AcquisitionSpec(scopes=[SMALL_SCOPE], cameras=[], notes=[(1500, "led, up"), (20, "go")])
    truth = write_acquisition(tmp_path / "acq", spec)
    out = tmp_path / "out.nwb"
    convert_session(tmp_path / "acq", out)
    first_ms = int(truth.devices["Miniscope"].timestamps_ms[0])  # negative: before the start
    with read_nwb(out) as nwb:
        notes = nwb.events["notes"].to_dataframe()
        assert list(notes.annotation) == ["go", "led, up"]
        np.testing.assert_allclose(
            notes.timestamp, [(20 - first_ms) / 1000, (1500 - first_ms) / 1000]
        )


def test_metadata_file_and_best_practices(two_acquisitions, tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    root, _ = two_acquisitions
    meta = tmp_path / "meta.yaml"
    meta.write_text(
        "NWBFile:\n  experimenter: ['Doe, Jane']\n  institution: UCLA\n  lab: Cai\n"
        "  keywords: [miniscope]\n  experiment_description: Linear track.\n"
        "Subject:\n  species: Mus musculus\n  sex: F\n  age: P90D\n  description: wild type\n"
        "Ophys:\n  indicator: GCaMP6f\n  location: CA1\n  excitation_lambda: 470\n"
        "  emission_lambda: 525\n"
    )
    out = tmp_path / "out.nwb"
    convert_session(root, out, metadata_path=meta)
    assert validate(path=str(out)) == []
    found = [m for m in inspect_nwbfile(nwbfile_path=str(out))]
    serious = [m for m in found if m.importance.value >= Importance.BEST_PRACTICE_VIOLATION.value]
    assert serious == [], serious
    with read_nwb(out) as nwb:
        assert nwb.subject.subject_id == "m01" and nwb.subject.species == "Mus musculus"
        assert list(nwb.experimenter) == ["Doe, Jane"]
        plane = nwb.imaging_planes["ImagingPlaneMiniscope"]
        assert (plane.indicator, plane.location, plane.excitation_lambda) == ("GCaMP6f", "CA1", 470)
        device = nwb.devices["Miniscope"]
        assert (device.gain, device.frameRate, device.led0) == ("Low", "30FPS", 50)
        assert "ewl: -15" in device.description


@pytest.mark.parametrize(
    ("target", "work_dir"),
    [
        ("miniscope_core.encode.chunks.write_chunks", False),
        ("miniscope_core.nwb.backends.hdf5.copy_chunks", True),
    ],
)
def test_nothing_half_written_and_raw_untouched(
    two_acquisitions, tmp_path, monkeypatch, target, work_dir
):
    root, _ = two_acquisitions
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    out = tmp_path / "out.nwb"

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(target, fail)
    with pytest.raises(OSError, match="disk full"):
        convert_session(root, out, work_dir=tmp_path / "work" if work_dir else None)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    assert not (tmp_path / "out.nwb.chunks").exists()
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_fewer_decodable_frames_than_packets_falls_back_to_staged(
    two_acquisitions, tmp_path, monkeypatch
):
    """Counting packets is only a plan; frames that do not decode must not leave empty chunks."""
    from miniscope_core.encode import chunks

    root, truths = two_acquisitions
    real = chunks.count_frames
    monkeypatch.setattr(chunks, "count_frames", lambda path: real(path) + 1)
    out = tmp_path / "out.nwb"
    result = convert_session(root, out)
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 240}
    with read_nwb(out) as nwb:
        data = nwb.acquisition["OnePhotonSeriesMiniscope"].data[:]
        np.testing.assert_array_equal(data, _expected_frames(truths))


def test_new_acquisition_reuses_chunk_files(tmp_path):
    root = tmp_path / "s"
    work = tmp_path / "work"
    write_session(root, n_acquisitions=1, scope=SMALL_SCOPE, cameras=[])
    convert_session(root, tmp_path / "a.nwb", work_dir=work)
    first = {p: p.stat().st_mtime_ns for p in work.rglob("*.h5")}
    later = replace(SMALL_SCOPE, seed=5)
    start = DEFAULT_START + timedelta(minutes=25)
    write_acquisition(root / "12_00_00", AcquisitionSpec(start, scopes=[later], cameras=[]))
    result = convert_session(root, tmp_path / "b.nwb", work_dir=work)
    assert result.series_frames == {"OnePhotonSeriesMiniscope": 240}
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())
    assert len(list(work.rglob("*.h5"))) == 2 * len(first)


def test_regular_camera_pixels_are_not_decoded_into_memory(two_acquisitions, tmp_path):
    """Linked cameras are only counted; their chunk files hold no pixels."""
    root, _ = two_acquisitions
    work = tmp_path / "work"
    convert_session(root, tmp_path / "o.nwb", work_dir=work)
    import h5py

    for chunk in work.rglob("BehavCam_2/*.h5"):
        with h5py.File(chunk) as h5:
            assert "frames" not in h5 and h5.attrs["n_frames"] > 0


def test_zlib_engine_output_equals_isal_pixels(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    out = tmp_path / "zlib.nwb"
    convert_session(root, out, ConversionOptions(deflate_engine="zlib", compression_level=4))
    with read_nwb(out) as nwb:
        series = nwb.acquisition["OnePhotonSeriesMiniscope"]
        assert series.data.compression_opts == 4
        np.testing.assert_array_equal(series.data[:], _expected_frames(truths))


def test_camera_only_gap_does_not_shift_scope(tmp_path):
    """Two devices in one acquisition share its clock: neither is shifted against the other."""
    scope = replace(SMALL_SCOPE, dropped_frames={})
    camera = CameraSpec(n_frames=60, height=24, width=32, interval_ms=50.0)
    truth = write_acquisition(tmp_path / "acq", AcquisitionSpec(scopes=[scope], cameras=[camera]))
    out = tmp_path / "o.nwb"
    convert_session(tmp_path / "acq", out)
    scope_ms = truth.devices["Miniscope"].timestamps_ms
    cam_ms = truth.devices["BehavCam_2"].timestamps_ms
    with read_nwb(out) as nwb:
        s = nwb.acquisition["OnePhotonSeriesMiniscope"].timestamps[:]
        c = nwb.acquisition["ImageSeriesBehavCam2"].timestamps[:]
        assert s[0] - c[0] == pytest.approx((scope_ms[0] - cam_ms[0]) / 1000.0)


def test_counted_only_camera_chunks_are_decoded_when_embedding_later(two_acquisitions, tmp_path):
    root, truths = two_acquisitions
    work = tmp_path / "work"
    convert_session(root, tmp_path / "linked.nwb", work_dir=work)
    out = tmp_path / "embedded.nwb"
    convert_session(root, out, ConversionOptions(embed_cameras=True), work_dir=work)
    video = truths[1].devices["BehavCam_2"].videos[-1]
    last = np.stack([f.swapaxes(0, 1) for f in open_video(video, color=True).frames])
    with read_nwb(out) as nwb:
        data = nwb.acquisition["ImageSeriesBehavCam2"].data
        assert data.shape == (180, 32, 24, 3)
        np.testing.assert_array_equal(data[-len(last) :], last)
