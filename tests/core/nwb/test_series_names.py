"""`--rename-series OLD=NEW`: image series named as a lab's scripts expect, by the layout itself
(both backends), and a name that would read wrong refused before any frame is decoded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from support import SMALL_CAMERA, TINY, read_nwb

from miniscope_core import ConversionOptions, MiniscopeFormatError, convert_session
from miniscope_core.cli import main

SCOPE = replace(TINY, n_frames=10, frames_per_file=5)
CAMERA = replace(SMALL_CAMERA, n_frames=8, frames_per_file=4, gaps={})


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from miniscope_core.testing.synthetic import write_session

    root = tmp_path_factory.mktemp("daq") / "m01" / "2024_01_15"
    write_session(root, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    return root


def _series(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with h5py.File(path, "r") as nwb:
        return {
            name: (group["data"][()], group["timestamps"][()])
            for name, group in nwb["acquisition"].items()
            if "data" in group and "timestamps" in group
        }


def test_renamed_series_hold_the_same_frames_and_times(session: Path, tmp_path: Path) -> None:
    plain, renamed = tmp_path / "plain.nwb", tmp_path / "renamed.nwb"
    convert_session(session, plain)
    pairs = (("OnePhotonSeriesMiniscope", "Scope_GCaMP6f"), ("ImageSeriesBehavCam2", "Arena"))
    done = convert_session(session, renamed, ConversionOptions(series_names=pairs))
    before, after = _series(plain), _series(renamed)
    assert set(after) == set(before) - set(dict(pairs)) | set(dict(pairs).values())
    np.testing.assert_array_equal(after["Scope_GCaMP6f"][0], before["OnePhotonSeriesMiniscope"][0])
    np.testing.assert_array_equal(after["Scope_GCaMP6f"][1], before["OnePhotonSeriesMiniscope"][1])
    assert done.series_frames["Scope_GCaMP6f"] == 20
    with read_nwb(renamed) as nwb:
        assert nwb.acquisition["Arena"].external_file is not None  # the camera, still linked
        assert nwb.acquisition["Scope_GCaMP6f"].imaging_plane.name == "ImagingPlaneMiniscope"


def test_a_rename_per_acquisition(session: Path, tmp_path: Path) -> None:
    out = tmp_path / "per.nwb"
    options = ConversionOptions(
        per_acquisition=True, series_names=(("OnePhotonSeriesMiniscope_11_37_45", "Second"),)
    )
    convert_session(session, out, options)
    names = set(_series(out))
    assert {"OnePhotonSeriesMiniscope_11_34_45", "Second"} <= names


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((("OnePhotonSeries", "X"),), r"no image series OnePhotonSeries to rename; the layout"),
        (
            (("OnePhotonSeriesMiniscope", "ImageSeriesBehavCam2"),),
            r"series ImageSeriesBehavCam2 renamed|renamed ImageSeriesBehavCam2: another series",
        ),
    ],
    ids=["unknown name", "name of another series"],
)
def test_a_rename_that_cannot_hold_is_refused_and_nothing_written(
    session: Path, tmp_path: Path, pairs: tuple[tuple[str, str], ...], message: str
) -> None:
    out = tmp_path / "refused.nwb"
    with pytest.raises(MiniscopeFormatError, match=message):
        convert_session(session, out, ConversionOptions(series_names=pairs))
    assert list(tmp_path.iterdir()) == []


def test_the_flag(session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.nwb"
    flag = "OnePhotonSeriesMiniscope=Scope, ImageSeriesBehavCam2=Arena"
    assert main(["convert", str(session), "-o", str(out), "--quiet", "--rename-series", flag]) == 0
    with h5py.File(out, "r") as nwb:
        assert {"Scope", "Arena"} <= set(nwb["acquisition"])
    with pytest.raises(SystemExit):
        main(["convert", str(session), "-o", str(tmp_path / "x.nwb"), "--rename-series", "a/b=c"])
    assert "is not OLD=NEW" in capsys.readouterr().err


def test_zarr_renames_too(session: Path, tmp_path: Path) -> None:
    pytest.importorskip("hdmf_zarr")
    from miniscope_core.verify.validate import open_nwb_root

    out = tmp_path / "renamed.nwb.zarr"
    pairs = (("OnePhotonSeriesMiniscope", "Scope"),)
    convert_session(session, out, ConversionOptions(backend="zarr", series_names=pairs))
    with open_nwb_root(out) as root:
        assert root["acquisition"]["Scope"]["data"].shape[0] == 20
