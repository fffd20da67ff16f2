"""The rest of the NeuroConv API a script uses: 0.10's dict-shaped metadata, a behaviour video
in a pipe, stubs, new timestamps, and every refusal in one line (never a different file)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support import SMALL_CAMERA, TINY, read_nwb

from miniscope_core import MiniscopeFormatError, OutputError
from miniscope_core.neuroconv import (
    ConverterPipe,
    ExternalVideoInterface,
    MiniscopeHeadOrientationInterface,
    MiniscopeImagingInterface,
    NeuroConvUnsupported,
)
from miniscope_core.testing.synthetic import AcquisitionSpec, AcquisitionTruth, write_acquisition

START = datetime(2021, 10, 7, 15, 3, 28, 635000, tzinfo=ZoneInfo("US/Pacific"))


@pytest.fixture(scope="module")
def acquisitions(tmp_path_factory: pytest.TempPathFactory) -> list[AcquisitionTruth]:
    root = tmp_path_factory.mktemp("session")
    camera = replace(SMALL_CAMERA, n_frames=8, frames_per_file=8, gaps={})
    return [
        write_acquisition(
            root / f"{start:%H_%M_%S}",
            AcquisitionSpec(start=start, scopes=[replace(TINY, seed=k)], cameras=[camera]),
        )
        for k, start in enumerate((START, START + timedelta(minutes=3)))
    ]


def _scope(truth: AcquisitionTruth, **kwargs) -> MiniscopeImagingInterface:
    return MiniscopeImagingInterface(folder_path=truth.devices["Miniscope"].folder, **kwargs)


def test_dict_shaped_metadata_of_neuroconv_0_10(acquisitions, tmp_path: Path) -> None:
    """The current guide's edits, on get_metadata(use_new_metadata_format=True)."""
    one = _scope(acquisitions[0], metadata_key="acquisition1")
    two = _scope(acquisitions[1], metadata_key="acquisition2")
    converter = ConverterPipe(data_interfaces={"A1": one, "A2": two})
    metadata = converter.get_metadata(use_new_metadata_format=True)
    metadata["Ophys"]["MicroscopySeries"]["acquisition1"]["name"] = "OnePhotonSeriesAcquisition1"
    metadata["Ophys"]["MicroscopySeries"]["acquisition2"]["name"] = "OnePhotonSeriesAcquisition2"
    metadata["Ophys"]["ImagingPlanes"]["acquisition1"]["indicator"] = "GCaMP6f"
    metadata["Ophys"]["ImagingPlanes"]["acquisition1"]["location"] = "CA1"
    out = tmp_path / "dict.nwb"
    with pytest.warns(UserWarning, match="A2: no set_aligned_starting_time"):
        converter.run_conversion(nwbfile_path=out, metadata=metadata)
    with read_nwb(out) as nwb:
        assert set(nwb.acquisition) == {
            "OnePhotonSeriesAcquisition1",
            "OnePhotonSeriesAcquisition2",
        }
        plane = nwb.acquisition["OnePhotonSeriesAcquisition1"].imaging_plane
        assert (plane.indicator, plane.location) == ("GCaMP6f", "CA1")
        # without a shift the second acquisition keeps its recorded place (180 s later)
        second = nwb.acquisition["OnePhotonSeriesAcquisition2"].timestamps[:]
        expected = acquisitions[1].devices["Miniscope"].timestamps_ms / 1000 + 180.0
        np.testing.assert_allclose(second, expected, atol=1e-9)


def test_behaviour_video_and_new_timestamps_in_a_pipe(acquisitions, tmp_path: Path) -> None:
    truth = acquisitions[0]
    scope = _scope(truth)
    camera = ExternalVideoInterface(file_paths=list(truth.devices["BehavCam_2"].videos))
    new_times = 100.0 + np.arange(TINY.n_frames) * 0.05
    scope.set_aligned_timestamps(new_times)
    np.testing.assert_array_equal(scope.get_timestamps(), new_times)
    out = tmp_path / "video.nwb"
    ConverterPipe([scope, camera]).run_conversion(nwbfile_path=out)
    with read_nwb(out) as nwb:
        np.testing.assert_allclose(nwb.acquisition["OnePhotonSeries"].timestamps[:], new_times)
        video = next(s for n, s in nwb.acquisition.items() if n.startswith("ImageSeries"))
        linked = [(out.parent / f).resolve() for f in video.external_file[:]]
        assert linked == [v.resolve() for v in truth.devices["BehavCam_2"].videos]
        assert video.timestamps[0] >= 99.0  # the camera moves with its acquisition


def test_stub_test_is_the_stub_run(tmp_path: Path) -> None:
    truth = write_acquisition(
        tmp_path / "s" / "15_03_28",
        AcquisitionSpec(
            start=START, scopes=[replace(TINY, n_frames=104, frames_per_file=60)], cameras=[]
        ),
    )
    interface = _scope(truth)
    interface.run_conversion(nwbfile_path=tmp_path / "stub.nwb", stub_test=True)
    with read_nwb(tmp_path / "stub.nwb") as nwb:
        assert nwb.acquisition["OnePhotonSeries"].data.shape[0] == 100
        assert "Stub conversion" in nwb.notes
    with pytest.raises(NeuroConvUnsupported, match="stub_samples can only be"):
        interface.run_conversion(nwbfile_path=tmp_path / "s50.nwb", stub_test=True, stub_samples=50)


def test_an_existing_file_is_kept_unless_overwrite(acquisitions, tmp_path: Path) -> None:
    out = tmp_path / "kept.nwb"
    out.write_bytes(b"mine")
    with pytest.raises(OutputError):
        _scope(acquisitions[0]).run_conversion(nwbfile_path=out)
    assert out.read_bytes() == b"mine"
    _scope(acquisitions[0]).run_conversion(nwbfile_path=out, overwrite=True)
    with read_nwb(out) as nwb:
        assert "OnePhotonSeries" in nwb.acquisition


def _series_description(m: dict) -> None:
    m["Ophys"]["OnePhotonSeries"][0]["description"] = "x"


def _imaging_rate(m: dict) -> None:
    m["Ophys"]["ImagingPlane"][0]["imaging_rate"] = 20.0


def _plane_name(m: dict) -> None:
    m["Ophys"]["ImagingPlane"][0]["name"] = "Plane"


def _paris(m: dict) -> None:
    start = m["NWBFile"]["session_start_time"]
    m["NWBFile"]["session_start_time"] = start.replace(tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_series_description, "OnePhotonSeries\\[0\\].description"),
        (_imaging_rate, "imaging_rate = 20.0: not written"),
        (_plane_name, "named by their Miniscope"),
        (_paris, "not the recorded start"),
    ],
)
def test_metadata_the_file_would_not_hold_is_refused(
    acquisitions, tmp_path: Path, edit, match
) -> None:
    interface = _scope(acquisitions[0])
    metadata = interface.get_metadata()
    edit(metadata)
    with pytest.raises(MiniscopeFormatError, match=match) as caught:
        interface.run_conversion(nwbfile_path=tmp_path / "x.nwb", metadata=metadata)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.nwb").exists()


def test_unsupported_calls_name_the_alternative(acquisitions, tmp_path: Path) -> None:
    interface = _scope(acquisitions[0])
    out = tmp_path / "x.nwb"
    for kwargs, match in [
        ({"nwbfile": object()}, "in-memory NWBFile"),
        ({"backend_configuration": object()}, "compression_level"),
        ({"append_on_disk_nwbfile": True}, "write a new file"),
        ({"iterator_options": {}}, "the options are"),
        ({"photon_series_type": "TwoPhotonSeries"}, "can only be"),
    ]:
        with pytest.raises(NeuroConvUnsupported, match=match) as caught:
            interface.run_conversion(nwbfile_path=out, **kwargs)
        assert "\n" not in str(caught.value)
    with pytest.raises(NeuroConvUnsupported, match="run_conversion"):
        interface.add_to_nwbfile(None, {})
    with pytest.raises(NeuroConvUnsupported, match="headOrientation.csv"):
        MiniscopeHeadOrientationInterface(file_path="headOrientation.csv")
    two = ConverterPipe({"a": _scope(acquisitions[0]), "b": _scope(acquisitions[1])})
    with pytest.raises(MiniscopeFormatError, match="would all write the series 'OnePhotonSeries'"):
        two.run_conversion(nwbfile_path=out)
    assert not out.exists()
