"""`--backend zarr`: NWB Zarr stores that hold what the HDF5 file holds, written just as safely."""

from __future__ import annotations

import json
import signal
import sys
from importlib.util import find_spec
from pathlib import Path

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO
from support import SMALL_CAMERA, _start, _wait_for_partial

from miniscope_assets.settings import MiniscopeSettings, SettingsError
from miniscope_core import ConversionOptions, convert_session
from miniscope_core.cli import main
from miniscope_core.nwb.backends import zarr as zarr_output
from miniscope_core.options import FRAMES_PER_CHUNK
from miniscope_core.testing.synthetic import ScopeSpec, write_demo_session, write_session
from miniscope_core.verify.validate import check_file, verify_nwb

needs_zarr = pytest.mark.skipif(
    find_spec("hdmf_zarr") is None, reason="hdmf-zarr (the [zarr] extra) is not installed"
)
# More frames than the frame width: nwbinspector calls short series CRITICAL.
SCOPE = ScopeSpec(n_frames=70, height=40, width=48, frames_per_file=30, dropped_frames={20: 1})
METADATA = "Subject:\n  species: Mus musculus\n  sex: F\n  age: P60D\n"
SCOPE_DATA = "acquisition/OnePhotonSeriesMiniscope/data"
MISSING = "NWB Zarr needs hdmf-zarr, which is not installed: pip install 'miniscope-nwb[zarr]'"


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = tmp_path / "raw" / "session"
    write_session(folder, n_acquisitions=2, scope=SCOPE, cameras=[SMALL_CAMERA])
    (folder / "nwb_metadata.yaml").write_text(METADATA)
    return folder


def _convert(session: Path, output: Path, *flags: str) -> int:
    return main(["convert", str(session), "-o", str(output), "--quiet", *flags])


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _series(nwbfile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels and timestamps of every image series, read through pynwb."""
    return {
        name: (np.asarray(series.data[:]), np.asarray(series.timestamps[:]))
        for name, series in nwbfile.acquisition.items()
        if hasattr(series, "data") and getattr(series.data, "ndim", 0) >= 3
    }


@needs_zarr
def test_pixels_and_timestamps_round_trip_exactly_as_in_the_hdf5_file(session, tmp_path):
    from hdmf_zarr import NWBZarrIO

    zarr_out, hdf5_out = tmp_path / "s.nwb.zarr", tmp_path / "s.nwb"
    assert _convert(session, zarr_out, "--backend", "zarr", "--embed-cameras") == 0
    assert _convert(session, hdf5_out, "--embed-cameras") == 0
    with NWBZarrIO(str(zarr_out), "r") as io, NWBHDF5IO(hdf5_out, "r") as h5io:
        stored, reference = io.read(), h5io.read()
        in_zarr, in_hdf5 = _series(stored), _series(reference)
        assert stored.subject.sex == reference.subject.sex == "F"
        assert stored.session_start_time == reference.session_start_time
    assert set(in_zarr) == {"OnePhotonSeriesMiniscope", "ImageSeriesBehavCam2"} == set(in_hdf5)
    for name, (pixels, times) in in_zarr.items():
        assert pixels.dtype == np.uint8 and np.array_equal(pixels, in_hdf5[name][0]), name
        assert np.array_equal(times, in_hdf5[name][1]) and np.all(np.diff(times) > 0), name
    scope_pixels, scope_times = in_zarr["OnePhotonSeriesMiniscope"]
    assert scope_pixels.shape == (2 * SCOPE.n_frames, SCOPE.width, SCOPE.height)
    assert len(scope_times) == 2 * SCOPE.n_frames
    assert scope_pixels.std() > 0  # real frames, not the fill value


@needs_zarr
def test_every_frame_is_one_zlib_chunk_holding_the_hdf5_files_bytes(session, tmp_path):
    """The store is filled from chunk files (--work-dir), the HDF5 file decoded directly."""
    zarr_out, hdf5_out = tmp_path / "s.nwb.zarr", tmp_path / "s.nwb"
    zarr_options = ConversionOptions(backend="zarr", compression_level=3)
    convert_session(session, zarr_out, zarr_options, work_dir=tmp_path / "chunks")
    convert_session(session, hdf5_out, ConversionOptions(compression_level=3))
    array = zarr_out / SCOPE_DATA
    meta = json.loads((array / ".zarray").read_text())
    n_frames = 2 * SCOPE.n_frames
    assert meta["shape"] == [n_frames, SCOPE.width, SCOPE.height]
    assert meta["chunks"] == [FRAMES_PER_CHUNK, SCOPE.width, SCOPE.height]
    assert meta["compressor"] == {"id": "zlib", "level": 3} and meta["filters"] is None
    chunks = sorted(p.name for p in array.iterdir() if not p.name.startswith("."))
    n_chunks = -(-n_frames // FRAMES_PER_CHUNK)
    assert chunks == sorted(f"{k}.0.0" for k in range(n_chunks))
    with h5py.File(hdf5_out, "r") as h5:
        dataset_id = h5[SCOPE_DATA].id
        for k in (0, 7, n_chunks - 1):  # deflated once, stored as is by both backends
            row = k * FRAMES_PER_CHUNK
            assert (array / f"{k}.0.0").read_bytes() == dataset_id.read_direct_chunk((row, 0, 0))[1]


@needs_zarr
def test_the_store_passes_the_same_validation_and_the_cli_validates_it(session, tmp_path, capsys):
    out = tmp_path / "s.nwb.zarr"
    convert_session(session, out, ConversionOptions(backend="zarr"))
    result = check_file(out)
    assert result.passed, result.problems
    assert result.readback.series == 2 and result.schema_errors == ()  # scope, linked camera
    assert main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: ok (2 image series read back;")


@needs_zarr
def test_a_zarr_store_that_is_not_nwb_is_refused_in_one_line(tmp_path, capsys):
    store = tmp_path / "other.nwb.zarr"
    store.mkdir()
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    assert main(["validate", str(store)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {store}: is a Zarr store but not NWB (no NWBFile at its root)\n"


@needs_zarr
def test_the_read_back_finds_a_missing_or_corrupt_frame_in_a_store(session, tmp_path):
    out = tmp_path / "s.nwb.zarr"
    convert_session(session, out, ConversionOptions(backend="zarr", frames_per_chunk=1))
    last = 2 * SCOPE.n_frames - 1
    (out / SCOPE_DATA / f"{last}.0.0").write_bytes(b"not deflate")
    assert verify_nwb(out).problems == (
        "acquisition/OnePhotonSeriesMiniscope: frame 139 does not inflate "
        "(Error -3 while decompressing data: incorrect header check)",
    )
    (out / SCOPE_DATA / "5.0.0").unlink()
    (problem,) = verify_nwb(out).problems
    assert problem.endswith(
        f"{last} of {last + 1} chunks have data (the others would read as zeros)"
    )


@needs_zarr
def test_a_failed_write_leaves_no_store_behind(session, tmp_path, monkeypatch):

    out = tmp_path / "nwb" / "s.nwb.zarr"
    written = []

    def fail_midway(self, coord, data, filter_mask=0):
        if len(written) == 40:
            raise KeyboardInterrupt  # Ctrl-C while frames are being stored
        written.append(coord)
        self.array.store[self.key(coord[0])] = data

    monkeypatch.setattr(zarr_output.ZarrFrames, "write_direct_chunk", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        convert_session(session, out, ConversionOptions(backend="zarr", frames_per_chunk=1))
    assert len(written) == 40 and list(out.parent.iterdir()) == []


@needs_zarr
def test_ctrl_c_or_kill_leave_no_store_and_a_rerun_cleans_up(tmp_path):
    demo = write_demo_session(tmp_path / "raw")
    out = tmp_path / "s.nwb.zarr"
    args = ["convert", str(demo), "-o", str(out), "--backend", "zarr", "--quiet"]
    interrupted = _start(args, tmp_path)
    _wait_for_partial(tmp_path, interrupted)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130 and err.strip() == "interrupted, nothing written"
    assert not out.exists() and _hidden(tmp_path) == []
    killed = _start(args, tmp_path)
    _wait_for_partial(tmp_path, killed)
    killed.kill()
    killed.wait(timeout=30)
    assert not out.exists() and any(p.is_dir() for p in tmp_path.glob(".s.nwb.zarr.*.partial"))
    assert main(args) == 0
    assert _hidden(tmp_path) == [] and verify_nwb(out).passed


@needs_zarr
def test_an_existing_store_is_replaced_only_with_overwrite(session, tmp_path, capsys):
    out = tmp_path / "s.nwb.zarr"
    out.mkdir()
    (out / "notes.txt").write_text("a lab's earlier work")
    assert _convert(session, out, "--backend", "zarr") == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {out}: exists; pass --overwrite to replace it"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert _convert(session, out, "--backend", "zarr", "--overwrite") == 0
    assert not (out / "notes.txt").exists() and verify_nwb(out).passed
    assert _hidden(tmp_path) == []


@needs_zarr
def test_an_output_name_that_does_not_fit_the_backend_is_refused(session, tmp_path, capsys):
    assert _convert(session, tmp_path / "s.nwb", "--backend", "zarr") == 2
    assert _convert(session, tmp_path / "s.nwb.zarr") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {tmp_path / 's.nwb'}: a Zarr output (--backend zarr) must end in .nwb.zarr",
        f"error: {tmp_path / 's.nwb.zarr'}: ends in .zarr; write NWB Zarr with --backend zarr",
    ]
    assert list(tmp_path.iterdir()) == [tmp_path / "raw"]


@needs_zarr
def test_output_dir_and_dandi_name_stores_nwb_zarr(session, tmp_path, capsys):
    out = tmp_path / "nwb"
    main(["convert", str(session), "--output-dir", str(out), "--backend", "zarr", "--quiet"])
    assert sorted(p.name for p in out.iterdir()) == ["session.nwb.zarr", "session.nwb.zarr.qc.html"]
    assert "wrote " + str(out / "session.nwb.zarr") in capsys.readouterr().out
    dandiset = tmp_path / "dandiset"
    args = ["convert", str(session), "--output-dir", str(dandiset), "--backend", "zarr", "--dandi"]
    assert main([*args, "--quiet"]) == 0
    (store,) = dandiset.glob("sub-*/*.nwb.zarr")
    assert (
        store.relative_to(dandiset).as_posix() == "sub-m01/sub-m01_ses-session_image+ophys.nwb.zarr"
    )
    assert verify_nwb(store).passed


def test_without_hdmf_zarr_the_error_is_one_line(session, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hdmf_zarr", None)  # import hdmf_zarr now fails
    out = tmp_path / "s.nwb.zarr"
    assert _convert(session, out, "--backend", "zarr") == 2
    assert capsys.readouterr().err == f"error: {out}: {MISSING}\n"
    assert list(tmp_path.iterdir()) == [tmp_path / "raw"]
    out.mkdir()
    (out / ".zgroup").write_text('{"zarr_format": 2}')
    assert main(["validate", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {out}: {MISSING}\n"


@needs_zarr
def test_dagster_writes_the_store_when_the_run_config_or_the_setting_asks(session, tmp_path):
    dg = pytest.importorskip("dagster")
    assets = pytest.importorskip("miniscope_assets.assets")
    resources = pytest.importorskip("miniscope_assets.resources")
    storage = resources.MiniscopeStorage(
        raw_root=str(tmp_path / "raw"), output_root=str(tmp_path / "out")
    )
    zarr_run = assets.conversion_run_config(resources.ConversionConfig(backend="zarr"))
    assert zarr_run["ops"]["nwb_file"]["config"] == {"backend": "zarr"}
    key = "session"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("sessions", [key])
        result = dg.materialize(
            [assets.raw_session, *assets.CONVERSION_ASSETS],
            selection=assets.CONVERSION_ASSETS,
            partition_key=key,
            instance=instance,
            resources={"storage": storage},
            run_config=zarr_run,
        )
    assert result.success
    path = tmp_path / "out" / key / "session.nwb.zarr"
    assert verify_nwb(path).passed and not storage.nwb_path(key).exists()  # no .nwb written
    assert storage.converted() == {key: path}  # what `miniscope-dagster sessions` lists
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["nwb_valid"] and checks["frame_counts_agree"]
    (event,) = result.asset_materializations_for_node("nwb_file")
    assert event.metadata["path"].value == str(path)
    assert event.metadata["options"].value["backend"] == "zarr"
    assert event.metadata["size_bytes"].value > 2 * SCOPE.n_frames * 100

    by_setting = resources.MiniscopeStorage.from_settings(
        MiniscopeSettings.load({"MINISCOPE_BACKEND": "zarr"})
    )
    assert by_setting.nwb_path(key).name == "session.nwb.zarr"
    assert by_setting.options().backend == "zarr"
    with pytest.raises(SettingsError, match="MINISCOPE_BACKEND='h5': expected one of hdf5, zarr"):
        MiniscopeSettings.load({"MINISCOPE_BACKEND": "h5"})
