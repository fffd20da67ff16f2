"""`--neuroconv-names`: objects named as NeuroConv's MiniscopeConverter names them; default ours.

The expected names are NeuroConv's (catalystneuro/neuroconv 4ec28efa6, = neuroconv 0.10.2):
folder discovery (`miniscopeconverter.py` legacy mode, `MiniscopeBehaviorInterface`) writes one
concatenated `OnePhotonSeries<dev>` and `BehavCamImageSeries`; the User-Config converter writes
`OnePhotonSeries<dev><date><time>`, `ImageSeries<cam><date><time>` and
`TimeSeriesMiniscopeHeadOrientation<dev><date><time>`, devices named by `to_camel_case`.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from pynwb import validate
from support import SMALL_CAMERA, TINY, read_nwb

from miniscope_core import ConversionOptions, convert_session, discover
from miniscope_core.cli import main
from miniscope_core.nwb.naming import neuroconv_camel
from miniscope_core.pipeline.stages import probe_videos
from miniscope_core.reports.outcome import frame_counts
from miniscope_core.timing.recordings import Recording, session_recordings

SCOPE = replace(TINY, n_frames=10, frames_per_file=5)
CAMERA = replace(SMALL_CAMERA, n_frames=8, frames_per_file=4, gaps={})
DATE = "2024_01_15"
TIMES = ("11_34_45", "11_37_45")  # the DAQ's time folders of the two acquisitions


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DAQ's layout `<animal>/<date>/<time>/{Miniscope, BehavCam_2}`: two acquisitions."""
    from miniscope_core.testing.synthetic import write_session

    root = tmp_path_factory.mktemp("daq") / "m01" / DATE
    write_session(root, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == list(TIMES)
    return root


def _names(path: Path) -> dict[str, set[str]]:
    with read_nwb(path) as nwb:
        return {
            "acquisition": set(nwb.acquisition),
            "devices": set(nwb.devices),
            "imaging_planes": set(nwb.imaging_planes),
            "behavior": set(nwb.processing["behavior"].data_interfaces),
        }


def _convert(session: Path, out: Path, **options: Any) -> Path:
    convert_session(session, out, ConversionOptions(**options))
    assert validate(path=str(out)) == []
    return out


def test_neuroconv_camel_case_matches_its_docstring_examples() -> None:
    assert neuroconv_camel("ACC_miniscope2") == "ACCMiniscope2"
    assert neuroconv_camel("HPC_miniscope1") == "HPCMiniscope1"
    assert neuroconv_camel("my-device-name") == "MyDeviceName"
    assert neuroconv_camel("miniscopeDeviceName") == "Miniscopedevicename"
    assert neuroconv_camel("BehavCam_2") == "Behavcam2"


def test_neuroconv_names_one_series_per_device(session: Path, tmp_path: Path) -> None:
    out = _convert(session, tmp_path / "nc.nwb", neuroconv_names=True)
    assert _names(out) == {
        "acquisition": {"OnePhotonSeriesMiniscope", "BehavCamImageSeries"},
        "devices": {"Miniscope", "BehavCam2"},
        "imaging_planes": {"ImagingPlaneMiniscope"},
        "behavior": {"TimeSeriesMiniscopeHeadOrientationMiniscope"},
    }
    with read_nwb(out) as nwb:
        assert nwb.acquisition["OnePhotonSeriesMiniscope"].data.shape[0] == 2 * SCOPE.n_frames
        assert nwb.acquisition["BehavCamImageSeries"].device.name == "BehavCam2"
        plane = nwb.acquisition["OnePhotonSeriesMiniscope"].imaging_plane
        assert plane.device is nwb.devices["Miniscope"]


def test_neuroconv_names_per_acquisition(session: Path, tmp_path: Path) -> None:
    out = _convert(session, tmp_path / "nc.nwb", neuroconv_names=True, per_acquisition=True)
    glued = [DATE + time for time in TIMES]  # NeuroConv glues <date>/<time> without "/"
    assert _names(out) == {
        "acquisition": {f"OnePhotonSeriesMiniscope{g}" for g in glued}
        | {f"ImageSeriesBehavcam2{g}" for g in glued},
        "devices": {"Miniscope", "Behavcam2"},
        "imaging_planes": {"ImagingPlaneMiniscope"},
        "behavior": {f"TimeSeriesMiniscopeHeadOrientationMiniscope{g}" for g in glued},
    }
    with read_nwb(out) as nwb:
        for g in glued:
            assert nwb.acquisition[f"OnePhotonSeriesMiniscope{g}"].data.shape[0] == SCOPE.n_frames


@pytest.mark.parametrize("per_acquisition", [False, True])
def test_device_named_by_neuroconv_camel_case_and_counted(
    tmp_path: Path, per_acquisition: bool
) -> None:
    """NeuroConv lower-cases a name's inner capitals, ours keeps them; the frame-count check
    (Dagster's frame_counts_agree) finds the scope under the name the file uses."""
    from miniscope_core.testing.synthetic import write_session

    root = tmp_path / "m01" / DATE
    write_session(root, 2, replace(SCOPE, name="miniscopeDeviceName"), cameras=[])
    options = ConversionOptions(neuroconv_names=True, per_acquisition=per_acquisition)
    out = _convert(root, tmp_path / "nc.nwb", **asdict(options))
    glued = [DATE + time for time in TIMES]
    series = [f"OnePhotonSeriesMiniscopedevicename{g}" for g in glued]
    with read_nwb(out) as nwb:
        assert set(nwb.devices) == {"Miniscopedevicename"}
        # folder discovery appends the folder it found the scope in ("Miniscope")
        assert set(nwb.acquisition) == (
            set(series) if per_acquisition else {"OnePhotonSeriesMiniscopedevicenameMiniscope"}
        )
    counts = frame_counts(_recordings(root, options), out, options.naming)
    assert [(c.device, c.nwb) for c in counts] == [("miniscopeDeviceName", 2 * SCOPE.n_frames)]


def _recordings(session: Path, options: ConversionOptions) -> list[Recording]:
    found = discover(session)
    videos = probe_videos(found, options)
    return session_recordings(found, videos, False, not options.per_acquisition)


def test_default_names_stay_ours(session: Path, tmp_path: Path) -> None:
    out = _convert(session, tmp_path / "ours.nwb")
    assert _names(out) == {
        "acquisition": {"OnePhotonSeriesMiniscope", "ImageSeriesBehavCam2"},
        "devices": {"Miniscope", "BehavCam2"},
        "imaging_planes": {"ImagingPlaneMiniscope"},
        "behavior": {"TimeSeriesMiniscopeHeadOrientationMiniscope"},
    }
    out = _convert(session, tmp_path / "ours_per.nwb", per_acquisition=True)
    suffixes = [f"_{time}" for time in TIMES]
    assert _names(out) == {
        "acquisition": {f"OnePhotonSeriesMiniscope{s}" for s in suffixes}
        | {f"ImageSeriesBehavCam2{s}" for s in suffixes},
        "devices": {"Miniscope", "BehavCam2"},
        "imaging_planes": {"ImagingPlaneMiniscope"},
        "behavior": {f"TimeSeriesMiniscopeHeadOrientationMiniscope{s}" for s in suffixes},
    }


def test_cli_flag(session: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.nwb"
    assert main(["convert", str(session), "-o", str(out), "--neuroconv-names", "--quiet"]) == 0
    assert "BehavCamImageSeries" in _names(out)["acquisition"]
