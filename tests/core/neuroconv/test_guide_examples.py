"""NeuroConv's Miniscope guide, its examples verbatim but for the import, on synthetic sessions.

The examples are those of docs/conversion_examples_gallery/imaging/miniscope.rst in
catalystneuro/neuroconv before the dict-shaped metadata (0fe71be89^, the list shape our users'
scripts edit); the layout is the guide's C6-J588_Disc5 tree: acquisitions 15_03_28 and 15_06_28,
each with Miniscope/ and BehavCam_2/. Their second acquisition starts 180.248 s after the first,
so the guide's `set_aligned_starting_time(180.0)` is seen to win over the recorded gap.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pynwb import validate
from support import SMALL_CAMERA, TINY, read_nwb

from miniscope_core.testing.synthetic import AcquisitionSpec, AcquisitionTruth, write_acquisition

PACIFIC = ZoneInfo("US/Pacific")
FIRST = datetime(2021, 10, 7, 15, 3, 28, 635000, tzinfo=PACIFIC)
SECOND = FIRST + timedelta(seconds=180.248)  # 15:06:28.883
CAMERA = replace(SMALL_CAMERA, n_frames=8, frames_per_file=4, gaps={})


@pytest.fixture(scope="module")
def ophys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[AcquisitionTruth]]:
    """OPHYS_DATA_PATH with imaging_datasets/Miniscope/C6-J588_Disc5 as the guide has it."""
    root = tmp_path_factory.mktemp("ophys")
    session = root / "imaging_datasets" / "Miniscope" / "C6-J588_Disc5"
    truths = [
        write_acquisition(
            session / f"{start:%H_%M_%S}",
            AcquisitionSpec(
                start=start, scopes=[replace(TINY, seed=k)], cameras=[replace(CAMERA, seed=10 + k)]
            ),
        )  # fmt: skip
        for k, start in enumerate((FIRST, SECOND))
    ]
    return root, truths


def _frames(truth: AcquisitionTruth) -> np.ndarray:
    """What was encoded, in NWB's (frame, width, height) order."""
    return np.stack([frame.T for frame in truth.devices["Miniscope"].frames()])


def _native(truth: AcquisitionTruth, folder: str = "Miniscope") -> np.ndarray:
    return truth.devices[folder].timestamps_ms / 1000.0


def _offset(truth: AcquisitionTruth) -> float:
    return (truth.msec_since_epoch - round(FIRST.timestamp() * 1000)) / 1000


def test_miniscope_converter_example(ophys, tmp_path: Path) -> None:
    """One concatenated series with the recorded gap, and the behaviour video."""
    OPHYS_DATA_PATH, truths = ophys  # noqa: N806 (the guide's name)
    path_to_save_nwbfile = tmp_path / "converter.nwb"
    from miniscope_core.neuroconv import MiniscopeConverter

    # --- the guide, verbatim
    # fmt: off
    # The 'folder_path' is the path to the main Miniscope folder containing timestamp subfolders
    folder_path = str(OPHYS_DATA_PATH / "imaging_datasets" / "Miniscope" / "C6-J588_Disc5")
    converter = MiniscopeConverter(folder_path=folder_path, verbose=False)

    metadata = converter.get_metadata()
    # For data provenance we can add the time zone information to the conversion if missing
    session_start_time = metadata["NWBFile"]["session_start_time"]
    metadata["NWBFile"].update(session_start_time=session_start_time.replace(tzinfo=ZoneInfo("US/Pacific")))  # noqa: E501

    # Choose a path for saving the nwb file and run the conversion
    nwbfile_path = f"{path_to_save_nwbfile}"
    converter.run_conversion(nwbfile_path=nwbfile_path, metadata=metadata, overwrite=True)
    # fmt: on
    # --- end of the guide

    assert session_start_time == datetime(2021, 10, 7, 15, 3, 28, 635000)  # ms, not µs
    assert validate(path=nwbfile_path) == []
    with read_nwb(Path(nwbfile_path)) as nwb:
        assert nwb.session_start_time == FIRST
        assert set(nwb.acquisition) == {"OnePhotonSeriesMiniscope", "BehavCamImageSeries"}
        series = nwb.acquisition["OnePhotonSeriesMiniscope"]
        np.testing.assert_array_equal(series.data[:], np.concatenate([_frames(t) for t in truths]))
        expected = np.concatenate([_native(t) + _offset(t) for t in truths])
        np.testing.assert_allclose(series.timestamps[:], expected, atol=1e-9)
        gap = series.timestamps[TINY.n_frames] - series.timestamps[TINY.n_frames - 1]
        assert gap > 179.0
        camera = nwb.acquisition["BehavCamImageSeries"]
        assert len(camera.external_file) == 4  # two videos per acquisition, linked
        expected = np.concatenate([_native(t, "BehavCam_2") + _offset(t) for t in truths])
        np.testing.assert_allclose(camera.timestamps[:], expected, atol=1e-9)


def test_miniscope_imaging_interface_example(ophys, tmp_path: Path) -> None:
    OPHYS_DATA_PATH, truths = ophys  # noqa: N806
    path_to_save_nwbfile = tmp_path / "interface.nwb"
    from miniscope_core.neuroconv import MiniscopeImagingInterface

    # --- the guide, verbatim
    # fmt: off
    # Point directly to a Miniscope folder containing .avi files and metaData.json
    folder_path = str(OPHYS_DATA_PATH / "imaging_datasets" / "Miniscope" / "C6-J588_Disc5" / "15_03_28" / "Miniscope")  # noqa: E501
    interface = MiniscopeImagingInterface(folder_path=folder_path)

    # Get metadata (session_start_time is automatically extracted from parent folder's metaData.json)  # noqa: E501
    metadata = interface.get_metadata()
    session_start_time = metadata["NWBFile"]["session_start_time"]
    # For data provenance we can add the time zone information to the conversion
    metadata["NWBFile"]["session_start_time"] = session_start_time.replace(tzinfo=ZoneInfo("US/Pacific"))  # noqa: E501
    # Add subject information (required for DANDI upload)
    metadata["Subject"] = dict(subject_id="subject1", species="Mus musculus", sex="M", age="P30D")

    # Convert to NWB
    nwbfile_path = f"{path_to_save_nwbfile}"
    interface.run_conversion(nwbfile_path=nwbfile_path, metadata=metadata, overwrite=True)
    # fmt: on
    # --- end of the guide

    assert validate(path=nwbfile_path) == []
    with read_nwb(Path(nwbfile_path)) as nwb:
        assert nwb.session_start_time == FIRST
        assert nwb.session_start_time.microsecond == 635000
        assert set(nwb.acquisition) == {"OnePhotonSeries"}
        series = nwb.acquisition["OnePhotonSeries"]
        np.testing.assert_array_equal(series.data[:], _frames(truths[0]))
        np.testing.assert_allclose(series.timestamps[:], _native(truths[0]), atol=1e-9)
        assert series.imaging_plane.device.name == "Miniscope"
        assert nwb.subject.species == "Mus musculus"
    np.testing.assert_array_equal(interface.get_timestamps(), _native(truths[0]))


def test_explicit_file_paths(ophys, tmp_path: Path) -> None:
    """file_paths, configuration_file_path and timeStamps_file_path: the same acquisition."""
    OPHYS_DATA_PATH, truths = ophys  # noqa: N806
    from miniscope_core.neuroconv import MiniscopeImagingInterface

    folder = (
        OPHYS_DATA_PATH
        / "imaging_datasets"
        / "Miniscope"
        / "C6-J588_Disc5"
        / "15_06_28"
        / "Miniscope"
    )  # noqa: E501
    interface = MiniscopeImagingInterface(
        file_paths=[str(folder / "0.avi")],
        configuration_file_path=str(folder / "metaData.json"),
        timeStamps_file_path=str(folder / "timeStamps.csv"),
    )
    metadata = interface.get_metadata()
    assert metadata["NWBFile"]["session_start_time"] == datetime(2021, 10, 7, 15, 6, 28, 883000)
    out = tmp_path / "explicit.nwb"
    interface.run_conversion(nwbfile_path=out, metadata=metadata, overwrite=True)
    with read_nwb(out) as nwb:
        assert nwb.session_start_time == SECOND
        series = nwb.acquisition["OnePhotonSeries"]
        np.testing.assert_array_equal(series.data[:], _frames(truths[1]))
        np.testing.assert_allclose(series.timestamps[:], _native(truths[1]), atol=1e-9)


def test_converter_pipe_example(ophys, tmp_path: Path) -> None:
    """One series per acquisition, named as the metadata says, the second shifted to 180 s."""
    OPHYS_DATA_PATH, truths = ophys  # noqa: N806
    path_to_save_nwbfile = tmp_path / "pipe.nwb"
    from miniscope_core.neuroconv import ConverterPipe, MiniscopeImagingInterface

    # --- the guide, verbatim
    # fmt: off
    # Initialize imaging interfaces for sequential acquisitions
    # Acquisition 1 starts at time 0
    acquisition1_interface = MiniscopeImagingInterface(
        folder_path=str(OPHYS_DATA_PATH / "imaging_datasets" / "Miniscope" / "C6-J588_Disc5" / "15_03_28" / "Miniscope")  # noqa: E501
    )
    acquisition1_interface.set_aligned_starting_time(0.0)

    # Acquisition 2 starts 180 seconds after acquisition 1 (preserving the time gap)
    acquisition2_interface = MiniscopeImagingInterface(
        folder_path=str(OPHYS_DATA_PATH / "imaging_datasets" / "Miniscope" / "C6-J588_Disc5" / "15_06_28" / "Miniscope")  # noqa: E501
    )
    acquisition2_interface.set_aligned_starting_time(180.0)

    # Compose using ConverterPipe with descriptive names
    # Each interface creates its own OnePhotonSeries
    converter = ConverterPipe(data_interfaces={
        "MiniscopeAcquisition1": acquisition1_interface,
        "MiniscopeAcquisition2": acquisition2_interface
    })

    # Configure metadata (session_start_time is automatically extracted from first acquisition)
    metadata = converter.get_metadata()
    session_start_time = metadata["NWBFile"]["session_start_time"]
    metadata["NWBFile"]["session_start_time"] = session_start_time.replace(tzinfo=ZoneInfo("US/Pacific"))  # noqa: E501

    # Add a second OnePhotonSeries entry to metadata with a unique name
    acquisition2_metadata = metadata["Ophys"]["OnePhotonSeries"][0].copy()
    acquisition2_metadata["name"] = "OnePhotonSeriesAcquisition2"
    metadata["Ophys"]["OnePhotonSeries"].append(acquisition2_metadata)
    metadata["Ophys"]["OnePhotonSeries"][0]["name"] = "OnePhotonSeriesAcquisition1"

    # Use conversion_options to specify which photon_series_index each interface should use
    conversion_options = {
        "MiniscopeAcquisition1": {"photon_series_index": 0},
        "MiniscopeAcquisition2": {"photon_series_index": 1}
    }
    nwbfile_path = f"{path_to_save_nwbfile}"
    converter.run_conversion(
        nwbfile_path=nwbfile_path,
        metadata=metadata,
        conversion_options=conversion_options,
        overwrite=True
    )
    # fmt: on
    # --- end of the guide

    assert validate(path=nwbfile_path) == []
    with read_nwb(Path(nwbfile_path)) as nwb:
        assert nwb.session_start_time == FIRST
        assert set(nwb.acquisition) == {
            "OnePhotonSeriesAcquisition1",
            "OnePhotonSeriesAcquisition2",
        }  # noqa: E501
        for name, truth, shift in (("1", truths[0], 0.0), ("2", truths[1], 180.0)):
            series = nwb.acquisition[f"OnePhotonSeriesAcquisition{name}"]
            np.testing.assert_array_equal(series.data[:], _frames(truth))
            np.testing.assert_allclose(series.timestamps[:], _native(truth) + shift, atol=1e-9)
        assert "set_aligned_starting_time" in nwb.notes  # how the times were aligned
    np.testing.assert_allclose(acquisition2_interface.get_timestamps(), _native(truths[1]) + 180.0)
    assert converter.get_conversion_options_schema()["properties"]["MiniscopeAcquisition2"][
        "properties"]["photon_series_index"]["type"] == "integer"  # fmt: skip


def test_miniscope_converter_with_a_user_configuration_file(tmp_path: Path) -> None:
    """The guide's current first example: the DAQ's User-Config layout
    (<researcher>/<experiment>/<animal>/<date>/<time>), one series per acquisition named as
    NeuroConv names them."""
    import json

    from miniscope_core.neuroconv import MiniscopeConverter

    base = tmp_path / "data"
    animal = base / "Ann" / "ExpA" / "mouse1"
    for k, start in enumerate((FIRST, SECOND)):
        spec = AcquisitionSpec(start=start, scopes=[replace(TINY, seed=k)], cameras=[])
        write_acquisition(animal / "2021_10_07" / f"{start:%H_%M_%S}", spec)
    config = base / "UserConfigFile.json"
    structure = ["researcherName", "experimentName", "animalName", "date", "time"]
    values = {"researcherName": "Ann", "experimentName": "ExpA", "animalName": "mouse1"}
    config.write_text(json.dumps({"directoryStructure": structure, **values}))

    # --- the guide, verbatim but for the import
    converter = MiniscopeConverter(folder_path=str(base), user_configuration_file_path=str(config))
    metadata = converter.get_metadata()
    session_start_time = metadata["NWBFile"]["session_start_time"]
    metadata["NWBFile"]["session_start_time"] = session_start_time.replace(tzinfo=PACIFIC)
    nwbfile_path = str(tmp_path / "miniscope_user_config.nwb")
    converter.run_conversion(nwbfile_path=nwbfile_path, metadata=metadata, overwrite=True)
    # ---

    with read_nwb(Path(nwbfile_path)) as nwb:
        assert nwb.session_start_time == FIRST
        names = sorted(n for n in nwb.acquisition if n.startswith("OnePhotonSeries"))
        assert names == [
            "OnePhotonSeriesMiniscope2021_10_0715_03_28",
            "OnePhotonSeriesMiniscope2021_10_0715_06_28",
        ]
        assert all(nwb.acquisition[n].data.shape[0] == TINY.n_frames for n in names)
