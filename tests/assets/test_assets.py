"""The four assets on a synthetic session, in an ephemeral instance: files, pixels, checks, UI."""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dagster as dg
import h5py
import numpy as np
import pynwb
import pytest
from support import http_get, served

from miniscope_assets.assets import CONVERSION_ASSETS, conversion_run_config, report_path
from miniscope_assets.cli import _session_lines
from miniscope_assets.partitions import raw_session
from miniscope_assets.resources import ConversionConfig, MiniscopeStorage
from miniscope_core.testing.synthetic import (
    AcquisitionSpec,
    CameraSpec,
    ScopeSpec,
    write_acquisition,
    write_session,
)

KEY = "mouse1__2024_01_15"
# More frames (2 x 90) than the frame width: nwbinspector calls short series CRITICAL.
SCOPE = ScopeSpec(n_frames=90, height=40, width=48, frames_per_file=40, dropped_frames={20: 1})
CAMERA = CameraSpec(n_frames=60, height=24, width=32, frames_per_file=40)
LAB_METADATA = "Subject:\n  species: Mus musculus\n  sex: F\n  age: P60D\n"
SERIES = "acquisition/OnePhotonSeriesMiniscope/data"
CAMERA_SERIES = "acquisition/ImageSeriesBehavCam2/data"


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, list]:
    folder = tmp_path / "raw" / "mouse1" / "2024_01_15"
    truths = write_session(folder, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    return folder, truths


def storage_for(tmp_path: Path, **changes: object) -> MiniscopeStorage:
    lab = tmp_path / "lab.yaml"
    lab.write_text(LAB_METADATA)
    fields = {
        "raw_root": str(tmp_path / "raw"),
        "output_root": str(tmp_path / "out"),
        "metadata_file": str(lab),
    }
    return MiniscopeStorage(**{**fields, **changes})


def materialise(
    storage: MiniscopeStorage, instance: dg.DagsterInstance, key: str = KEY, **options: object
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("sessions", [key])
    return dg.materialize(
        [raw_session, *CONVERSION_ASSETS],
        selection=CONVERSION_ASSETS,
        partition_key=key,
        instance=instance,
        resources={"storage": storage},
        **options,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in event.metadata.items()}


def nwb_pixels(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as nwb:
        return nwb[SERIES][()]


def failed_step(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """The one step that failed in `result`, and its error message."""
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_key, failure.step_failure_data.error.message


def png_size(markdown: str) -> tuple[int, int]:
    data = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", markdown).group(1))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_all_assets_write_a_valid_nwb_with_the_exact_pixels(session, tmp_path):
    folder, truths = session
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance)
    assert result.success

    nwb = storage.nwb_path(KEY)
    assert pynwb.validate(path=str(nwb)) == []
    expected = np.concatenate(
        [np.stack(list(t.devices["Miniscope"].frames())) for t in truths]
    ).swapaxes(1, 2)  # NWB stores (frame, width, height)
    assert np.array_equal(nwb_pixels(nwb), expected)

    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "timestamps_increase": True,
        "dropped_frames_under_threshold": True,  # 2 of 182 scope frames: 1.1 % < 2 %
        "motion_under_threshold": True,
        "brightness_steady": True,
        "nwb_valid": True,
        "frame_counts_agree": True,
    }

    shown = metadata(result, "nwb_file")
    assert shown["frames"] == 180 and shown["series_frames"] == {"OnePhotonSeriesMiniscope": 180}
    report = Path(shown["qc_report_path"])
    assert report == nwb.with_name(nwb.name + ".qc.html")
    # no reports_url: the links are file:// URLs, as ever
    assert (shown["qc_report"], shown["dagster/uri"]) == (report.as_uri(), nwb.as_uri())
    assert "Field of view" in report.read_text()
    assert 1.0 < shown["qc_dropped_percent"] < 1.2 and shown["qc"] == "good"
    (event,) = result.asset_materializations_for_node("nwb_file")
    rows = [row.data for row in event.metadata["devices"].records]  # per acquisition and device
    assert [(r["acquisition"], r["device"]) for r in rows] == [
        (label, device)
        for label in ("11_34_45", "11_37_45")
        for device in ("Miniscope", "BehavCam 2")
    ]
    assert sum(r["dropped_frames"] for r in rows if r["device"] == "Miniscope") == 2
    assert shown["dropped_frames"] == 2 and 29 < shown["rate_hz"] < 31
    assert shown["size_bytes"] == nwb.stat().st_size and shown["path"] == str(nwb)
    assert png_size(shown["preview"]) == (48, 40)  # width x height of the frames (not enlarged)

    described = json.loads((storage.session_dir(KEY) / "acquisitions.json").read_text())
    assert described["rel_path"] == "mouse1/2024_01_15"
    assert [a["label"] for a in described["acquisitions"]] == ["11_34_45", "11_37_45"]
    assert [d["device"] for d in described["acquisitions"][0]["devices"]] == [
        "Miniscope",
        "BehavCam 2",
    ]
    assert described["nwb_metadata"]["Subject"]["sex"] == "F"

    timestamps = metadata(result, "timestamp_tables")
    assert (timestamps["frames"], timestamps["dropped_frames"]) == (180, 2)
    table = storage.session_dir(KEY) / "timestamps" / "11_37_45" / "Miniscope.csv"
    times = np.loadtxt(table, delimiter=",", skiprows=1, usecols=1, dtype=np.int64)
    assert np.array_equal(times, truths[1].devices["Miniscope"].timestamps_ms)

    chunks = metadata(result, "video_chunks")
    assert (chunks["files"], chunks["files_decoded_now"]) == (10, 10)  # 2 x (3 scope + 2 camera)
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_with_reports_url_the_links_open_over_http(tmp_path):
    """The output root served on 127.0.0.1 as a lab would: the links to the QC report and the
    file are reports_url + their path below the root, and the server returns them."""
    write_acquisition(tmp_path / "raw" / "s1" / "10_00_00", AcquisitionSpec(scopes=[SCOPE]))
    out = tmp_path / "out"
    out.mkdir()
    with served(out) as url, dg.instance_for_test() as instance:
        storage = storage_for(tmp_path, reports_url=url.rstrip("/"))  # normalised: one "/"
        result = materialise(storage, instance, "s1")
        assert result.success
        (event,) = result.asset_materializations_for_node("nwb_file")
        shown = {name: value.value for name, value in event.metadata.items()}
        report = Path(shown["qc_report_path"])
        assert shown["qc_report"] == url + "s1/s1.nwb.qc.html" and report.is_file()
        assert shown["dagster/uri"] == url + "s1/s1.nwb"
        assert http_get(shown["qc_report"]) == (200, report.read_bytes())
        assert http_get(shown["dagster/uri"]) == (200, storage.nwb_path("s1").read_bytes())
    assert f"QC report: {report}" in _session_lines(event.metadata)  # the CLI prints the path


def test_rerun_is_identical_and_a_new_acquisition_decodes_only_its_videos(session, tmp_path):
    folder, truths = session
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        materialise(storage, instance)
        first = nwb_pixels(storage.nwb_path(KEY))

        again = materialise(storage, instance)
        assert metadata(again, "video_chunks")["files_decoded_now"] == 0
        assert np.array_equal(nwb_pixels(storage.nwb_path(KEY)), first)

        later = replace(truths[0].spec, start=truths[1].spec.start + timedelta(minutes=3))
        write_acquisition(folder / "11_40_45", later)
        grown = materialise(storage, instance)
        assert metadata(grown, "video_chunks")["files_decoded_now"] == 5
        pixels = nwb_pixels(storage.nwb_path(KEY))
        assert pixels.shape[0] == 270 and np.array_equal(pixels[:180], first)

        cleaned = materialise(storage_for(tmp_path, keep_chunks=False), instance)
        assert cleaned.success and not storage.chunks_dir(KEY).exists()
        assert np.array_equal(nwb_pixels(storage.nwb_path(KEY)), pixels)


def test_missing_subject_fields_fail_the_nwb_check_not_the_conversion(session, tmp_path):
    storage = storage_for(tmp_path, metadata_file="")
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance)
    (valid,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "nwb_valid"]
    assert not valid.passed and valid.severity == dg.AssetCheckSeverity.ERROR
    assert any("check_subject_sex" in text for text in valid.metadata["critical"].value)
    assert storage.nwb_path(KEY).is_file()


def test_a_session_the_lab_linked_into_the_raw_root_is_read(tmp_path):
    outside = tmp_path / "elsewhere"
    write_acquisition(outside / "10_00_00", AcquisitionSpec(scopes=[SCOPE], cameras=[]))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "linked").symlink_to(outside)
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance, "linked")
    assert metadata(result, "acquisition_metadata")["rel_path"] == "linked"
    assert metadata(result, "nwb_file")["series_frames"] == {"OnePhotonSeriesMiniscope": 90}


def test_a_metadata_mistake_fails_the_first_asset_with_the_library_message(session, tmp_path):
    folder, _ = session
    (folder / "nwb_metadata.yaml").write_text("Subjct:\n  sex: F\n")
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
    step, message = failed_step(result)
    assert step == "acquisition_metadata"
    assert "nwb_metadata.yaml: Subjct: unknown section; did you mean 'Subject'?" in message
    assert not list((tmp_path / "out").rglob("*.nwb"))
    # the same metadata would fail the same way: the instance's run retries leave it alone
    assert run is not None and run.tags["dagster/retry_on_asset_or_op_failure"] == "false"
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.cause is None  # no library traceback behind it


def chosen(**choices: object) -> dict:
    """The run config a launchpad user (or `miniscope-dagster backfill`) gives for `choices`."""
    return conversion_run_config(ConversionConfig(**choices))


def scope_series(path: Path) -> list[str]:
    with h5py.File(path, "r") as nwb:
        return sorted(name for name in nwb["acquisition"] if name.startswith("OnePhoton"))


def test_the_settings_are_the_runs_defaults_and_run_config_overrides_them(session, tmp_path):
    folder, truths = session
    storage = storage_for(tmp_path, per_acquisition=True)
    labels = [t.folder.name for t in truths]
    with dg.instance_for_test() as instance:
        by_setting = materialise(storage, instance)
        assert scope_series(storage.nwb_path(KEY)) == [
            f"OnePhotonSeriesMiniscope_{label}" for label in labels
        ]
        assert metadata(by_setting, "nwb_file")["options"]["per_acquisition"] is True

        config = chosen(per_acquisition=False, metadata={"Subject": {"sex": "U"}})
        by_config = materialise(storage, instance, run_config=config)
    assert scope_series(storage.nwb_path(KEY)) == ["OnePhotonSeriesMiniscope"]
    assert metadata(by_config, "nwb_file")["series_frames"]["OnePhotonSeriesMiniscope"] == 180
    described = json.loads((storage.session_dir(KEY) / "acquisitions.json").read_text())
    assert described["nwb_metadata"]["Subject"]["sex"] == "U"
    with pynwb.NWBHDF5IO(storage.nwb_path(KEY), "r") as io:
        assert io.read().subject.sex == "U"


def chunk_pixels(folder: Path) -> np.ndarray:
    """The frames of a device's chunk files of every acquisition, in recording order."""
    files = sorted(
        folder.glob("*/BehavCam_2/*.h5"), key=lambda f: (f.parent.parent.name, int(f.stem))
    )
    parts = []
    for path in files:
        with h5py.File(path, "r") as chunk:
            parts.append(chunk["frames"][()])
    return np.concatenate(parts)


def test_embedded_cameras_hold_exactly_the_chunk_files_pixels_at_the_chosen_level(
    session, tmp_path
):
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(
            storage, instance, run_config=chosen(embed_cameras=True, compression_level=1)
        )
    assert result.success
    assert metadata(result, "video_chunks")["files_decoded_now"] == 10
    with h5py.File(storage.nwb_path(KEY), "r") as nwb:
        camera = nwb[CAMERA_SERIES]
        assert camera.shape == (120, 32, 24, 3)  # 2 x 60 frames, (frame, width, height, RGB)
        assert np.array_equal(camera[()], chunk_pixels(storage.chunks_dir(KEY)))
        assert camera.compression_opts == nwb[SERIES].compression_opts == 1


def test_strict_fails_a_mismatching_session_with_the_library_message(session, tmp_path):
    folder, _ = session
    table = folder / "11_34_45" / "Miniscope" / "timeStamps.csv"
    table.write_text("".join(table.read_text().splitlines(keepends=True)[:-5]))
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(
            storage, instance, run_config=chosen(strict=True), raise_on_error=False
        )
    step, message = failed_step(result)
    assert step == "nwb_file"
    assert re.search(r"2\.avi: 10 decodable frames but timeStamps\.csv lists 5", message)
    assert not storage.nwb_path(KEY).exists()


def test_a_bad_run_choice_fails_the_first_step_that_uses_it(session, tmp_path):
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(
            storage, instance, run_config=chosen(compression_level=9), raise_on_error=False
        )
    step, message = failed_step(result)
    assert step == "video_chunks"
    assert "compression_level=9: isal levels are 0-3, not 9" in message


def test_the_inventory_is_on_the_assets(session, tmp_path):
    folder, truths = session
    scope = truths[0].devices["Miniscope"].folder
    (scope / "1.avi.bak").write_bytes((scope / "0.avi").read_bytes())
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance)
    described = metadata(result, "acquisition_metadata")
    assert described["files"] == "30 used, 3 left out (1 of them look like recording data)"
    rows = {row.data["path"]: row.data for row in described["left_out"].records}
    assert rows["11_34_45/Miniscope/1.avi.bak"]["recording_data"] is True
    assert rows["11_34_45/experiment"]["reason"] == "an empty folder"
    written = metadata(result, "nwb_file")
    assert written["files"] == described["files"]
    assert any("1.avi.bak" in warning for warning in written["warnings"])
    with pynwb.NWBHDF5IO(storage.nwb_path(KEY), "r") as io:
        assert "11_34_45/Miniscope/1.avi.bak: a video" in io.read().notes


def test_an_acquisition_behind_a_link_is_converted_whole_by_dagster(session, tmp_path):
    folder, truths = session
    elsewhere = tmp_path / "big_disk" / truths[1].folder.name
    elsewhere.parent.mkdir()
    truths[1].folder.rename(elsewhere)
    truths[1].folder.symlink_to(elsewhere)
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance)
    assert metadata(result, "nwb_file")["series_frames"]["OnePhotonSeriesMiniscope"] == 180
    expected = np.stack([f.T for t in truths for f in t.devices["Miniscope"].frames()])
    np.testing.assert_array_equal(nwb_pixels(storage.nwb_path(KEY)), expected)


def test_the_report_path_reads_back_from_a_materialization_of_either_form():
    """Stored beside the link now; an earlier materialization has only its file:// link."""
    stored = {
        "qc_report": dg.MetadataValue.url("http://h/x"),
        "qc_report_path": dg.MetadataValue.path("/d/r.html"),
    }
    assert report_path(stored) == "/d/r.html"
    older = {"qc_report": dg.MetadataValue.url(Path("/data/mouse 1/r.html").as_uri())}
    assert report_path(older) == "/data/mouse 1/r.html"
    assert report_path({}) is None
