"""User NWB metadata: one precedence order, checked per file, refused with a one-line reason."""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path

import pynwb
import pytest
from pynwb.file import Subject

from miniscope_core import ConversionOptions, convert_session, discover
from miniscope_core.daq.model import Session
from miniscope_core.errors import MiniscopeFormatError, MiniscopeWarning
from miniscope_core.metadata.layers import (
    SESSION_METADATA_FILE,
    load_metadata_file,
    ophys_for,
    resolve_metadata,
)
from miniscope_core.metadata.schema import MetadataError, MetadataWarning
from miniscope_core.testing.synthetic import (
    AcquisitionSpec,
    ScopeSpec,
    write_acquisition,
    write_session,
)

TINY = ScopeSpec(n_frames=5, height=16, width=16)
FULL = """\
NWBFile:
  session_description: Linear track, day 3.
  identifier: 3f0c-day3
  session_id: m01-day3
  session_start_time: 2024-01-15T11:34:45-08:00
  experimenter: Doe, Jane
  experiment_description: Place cells.
  institution: UCLA
  lab: Cai
  keywords: [miniscope, CA1]
  related_publications: doi:10.1000/xyz
  notes: none
  pharmacology: none
  protocol: ARC-2020-001
  surgery: GRIN lens over CA1.
  virus: AAV1-Syn-GCaMP6f
  stimulus_notes: none
  data_collection: DAQ v1.11
  slices: none
Subject:
  subject_id: m01
  species: Mus musculus
  sex: F
  age: P90D/P120D
  age__reference: birth
  date_of_birth: 2023-10-01T00:00:00+00:00
  description: wild type
  genotype: WT
  strain: C57BL/6J
  weight: 25 g
Ophys:
  indicator: GCaMP6f
  location: CA1
  excitation_lambda: 470
  emission_lambda: 525
  imaging_plane_description: Stratum pyramidale.
"""


@pytest.fixture
def session(tmp_path: Path) -> Session:
    root = tmp_path / "session"
    write_session(root, n_acquisitions=1, scope=TINY, cameras=[])
    return discover(root)


@pytest.fixture
def dual(tmp_path: Path) -> Session:
    """Two scopes, DAQ names HPC_miniscope1 / ACC_miniscope2 (NWB: HPCMiniscope1 / ...)."""
    scopes = [ScopeSpec(name=name, n_frames=5, height=16, width=16) for name in NAMES]
    write_acquisition(tmp_path / "dual" / "10_00_00", AcquisitionSpec(scopes=scopes, cameras=[]))
    return discover(tmp_path / "dual")


NAMES = ("HPC_miniscope1", "ACC_miniscope2")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def description(session: Session, **layers: object) -> str:
    return resolve_metadata(session, **layers)["NWBFile"]["session_description"]


def test_each_layer_wins_over_the_ones_before(session, tmp_path):
    lab = write(tmp_path / "lab.yaml", "NWBFile:\n  session_description: lab\n  lab: Cai\n")
    own = write(session.root / SESSION_METADATA_FILE, "NWBFile:\n  session_description: own\n")
    user = write(tmp_path / "user.yaml", "NWBFile:\n  session_description: user\n")
    overrides = {"NWBFile": {"session_description": "overrides"}}
    layers = {"lab_file": lab, "user_file": user, "overrides": overrides}

    assert description(session, **layers) == "overrides"
    del layers["overrides"]
    assert description(session, **layers) == "user"
    del layers["user_file"]
    assert description(session, **layers) == "own"
    own.unlink()
    assert description(session, **layers) == "lab"
    assert resolve_metadata(session, **layers)["NWBFile"]["lab"] == "Cai"  # merged, not replaced
    assert description(session).startswith("UCLA Miniscope recording of m01")


def test_the_session_folders_own_file_is_applied(session):
    write(session.root / SESSION_METADATA_FILE, "Subject:\n  sex: F\n  species: Mus musculus\n")
    subject = resolve_metadata(session)["Subject"]
    assert subject == {"subject_id": "m01", "sex": "F", "species": "Mus musculus"}


def test_only_given_keys_and_an_empty_section_clears_nothing(session):
    write(session.root / SESSION_METADATA_FILE, "Subject:\nOphys:\n")
    metadata = resolve_metadata(session)
    assert set(metadata) == {"NWBFile", "Subject"}
    assert metadata["Subject"] == {"subject_id": "m01"}
    assert set(metadata["NWBFile"]) == {
        "session_description",
        "session_id",
        "experiment_description",
    }
    assert ophys_for(metadata, "Miniscope")["indicator"] == "unknown"


@pytest.mark.parametrize(
    ("text", "named", "expected"),
    [
        ("Subject:\n  sex: Male\n", "Subject.sex = 'Male'", "expected one of M, F, U, O (DANDI)"),
        ("Subject:\n  age: 90\n", "Subject.age = 90", "expected an ISO 8601 duration"),
        ("Subject:\n  species: mouse\n", "Subject.species = 'mouse'", "Latin binomial"),
        ("Subject:\n  weight: 25\n", "Subject.weight = 25", "a number and a unit"),
        (
            "NWBFile:\n  session_start_time: yesterday\n",
            "NWBFile.session_start_time = 'yesterday'",
            "expected an ISO 8601 date and time with a UTC offset",
        ),
        (
            "NWBFile:\n  session_start_time: 2024-01-15 11:34:45\n",
            "NWBFile.session_start_time = datetime.datetime(2024, 1, 15, 11, 34, 45)",
            "with a UTC offset",
        ),
        (
            "Ophys:\n  emission_lambda: green\n",
            "Ophys.emission_lambda = 'green'",
            "expected a positive number of nanometres",
        ),
        (
            "Ophys:\n  devices:\n    Miniscope:\n      excitation_lambda: -470\n",
            "Ophys.devices.Miniscope.excitation_lambda = -470",
            "expected a positive number of nanometres",
        ),
        (
            "NWBFile:\n  source_script: mine.py\n",
            "NWBFile.source_script = 'mine.py'",
            "written by miniscope-nwb",
        ),
        (
            "NWBFile:\n  experimenter: {name: Jane}\n",
            "NWBFile.experimenter = {'name': 'Jane'}",
            "expected text or a list of text",
        ),
        (
            "Ophys:\n  ImagingPlane:\n    - name: ImagingPlaneMiniscope\n      imaging_rate: 30\n",
            "Ophys.ImagingPlane[0].imaging_rate = 30",
            "so it would be lost; remove it",
        ),
        (
            "Ophys:\n  OnePhotonSeries:\n    - name: OnePhotonSeries\n      description: raw\n",
            "Ophys.OnePhotonSeries[0].description = 'raw'",
            "so it would be lost; remove it",
        ),
        (
            "Ophys:\n  ImagingPlane:\n    - optical_channel: [{emission_lambda: 525}, {}]\n",
            "Ophys.ImagingPlane[0].optical_channel = [{'emission_lambda': 525}, {}]",
            "expected one optical channel",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_file_key_and_expectation(
    session, tmp_path, text, named, expected
):
    lab = write(tmp_path / "lab.yaml", text)
    with pytest.raises(MetadataError) as caught:
        resolve_metadata(session, lab_file=lab)
    message = str(caught.value)
    assert message.startswith(f"{lab}: {named}: ") and expected in message
    assert "\n" not in message and "Traceback" not in message
    assert isinstance(caught.value, MiniscopeFormatError)


def test_all_problems_of_a_file_are_listed_on_one_line(session):
    bad = {"NWBFile": {"lab": True}, "Subject": {"sex": "Male", "age": 90}}
    with pytest.raises(MetadataError) as caught:
        resolve_metadata(session, overrides=bad)
    assert str(caught.value) == (
        "metadata: NWBFile.lab = True: expected text; Subject.sex = 'Male': expected one of M, F, "
        "U, O (DANDI); Subject.age = 90: expected an ISO 8601 duration such as 'P90D' (90 days) "
        "or 'P12W', or a range such as 'P90D/P120D' (DANDI)"
    )


def test_a_typo_suggests_the_key_meant(session, tmp_path):
    own = write(session.root / SESSION_METADATA_FILE, "Subjct:\n  sex: F\n")
    with pytest.raises(MetadataError) as caught:
        resolve_metadata(session)
    assert str(caught.value) == f"{own}: Subjct: unknown section; did you mean 'Subject'?"
    user = write(tmp_path / "user.yaml", "Subject:\n  sexx: F\n  speceis: Mus musculus\n")
    own.unlink()
    with pytest.raises(MetadataError) as caught:
        resolve_metadata(session, user_file=user)
    assert str(caught.value) == (
        f"{user}: Subject.sexx = 'F': unknown key; did you mean 'sex'?; "
        "Subject.speceis = 'Mus musculus': unknown key; did you mean 'species'?"
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "Subject: [\n", "is not valid YAML: expected the node content"),
        ("bad.json", '{"Subject": }', "is not valid JSON: Expecting value at line 1, column 13"),
        ("list.yaml", "- Subject\n", "expected a mapping of NWBFile, Subject, Ophys, not list"),
        ("missing.yaml", None, "cannot be read (No such file or directory)"),
    ],
)
def test_an_unreadable_file_is_named(tmp_path, name, text, expected):
    path = tmp_path / name
    if text is not None:
        write(path, text)
    with pytest.raises(MetadataError) as caught:
        load_metadata_file(path)
    assert str(caught.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(caught.value)


def test_a_yaml_error_says_where(tmp_path):
    path = write(tmp_path / "bad.yaml", "Subject:\n  sex: F\n species: x\n")
    with pytest.raises(MetadataError, match=r"bad\.yaml: is not valid YAML: .* line 3, column 2"):
        load_metadata_file(path)


def test_a_neuroconv_plane_applies_to_every_scope(dual, tmp_path):
    user = write(
        tmp_path / "neuroconv.yaml",
        """\
Ophys:
  Device:
    - name: Microscope
  ImagingPlane:
    - name: ImagingPlane
      description: Hippocampus and cortex.
      indicator: GCaMP6f
      location: CA1
      excitation_lambda: 470.0
      device: Microscope
      optical_channel:
        - name: OpticalChannel
          emission_lambda: 525.0
  OnePhotonSeries:
    - name: OnePhotonSeries
      imaging_plane: ImagingPlane
""",
    )
    metadata = resolve_metadata(dual, user_file=user)
    for name in NAMES:
        assert ophys_for(metadata, name) == {
            "indicator": "GCaMP6f",
            "location": "CA1",
            "excitation_lambda": 470.0,
            "emission_lambda": 525.0,
            "imaging_plane_description": "Hippocampus and cortex.",
            "unit": "n.a.",
        }


def test_neuroconv_planes_go_to_the_scopes_they_name(dual, tmp_path):
    user = write(
        tmp_path / "neuroconv.yaml",
        """\
Ophys:
  ImagingPlane:
    - name: ImagingPlaneHPCMiniscope1
      indicator: GCaMP6f
      location: CA1
      excitation_lambda: 470
      optical_channel: [{name: Green, emission_lambda: 525}]
    - name: Cortex
      device: ACCMiniscope2
      description: Anterior cingulate.
      indicator: jRGECO1a
      location: ACC
      excitation_lambda: 560
      optical_channel: [{name: Red, emission_lambda: 600}]
""",
    )
    metadata = resolve_metadata(dual, user_file=user)
    hpc, acc = (ophys_for(metadata, name) for name in NAMES)
    assert (hpc["indicator"], hpc["location"], hpc["excitation_lambda"]) == ("GCaMP6f", "CA1", 470)
    assert hpc["emission_lambda"] == 525.0 and isinstance(hpc["excitation_lambda"], float)
    assert hpc["imaging_plane_description"] == "The plane imaged by the Miniscope."  # default
    assert (acc["indicator"], acc["location"]) == ("jRGECO1a", "ACC")
    assert (acc["excitation_lambda"], acc["emission_lambda"]) == (560.0, 600.0)
    assert acc["imaging_plane_description"] == "Anterior cingulate."


def test_one_neuroconv_plane_naming_one_of_several_scopes_applies_to_it_only(dual):
    planes = [{"name": "ImagingPlaneACCMiniscope2", "indicator": "jRGECO1a"}]
    metadata = resolve_metadata(dual, overrides={"Ophys": {"ImagingPlane": planes}})
    assert [ophys_for(metadata, name)["indicator"] for name in NAMES] == ["unknown", "jRGECO1a"]


def test_neuroconv_planes_that_name_no_scope_are_refused(dual):
    planes = [{"name": "ImagingPlaneHPCMiniscope1"}, {"name": "Plane2", "device": "Scope2"}]
    with pytest.raises(MetadataError) as caught:
        resolve_metadata(dual, overrides={"Ophys": {"ImagingPlane": planes}})
    assert str(caught.value) == (
        "metadata: Ophys.ImagingPlane[1] = {'name': 'Plane2', 'device': 'Scope2'}: expected "
        "device (or name ImagingPlane<name>) to name one of this session's Miniscopes: "
        "ACCMiniscope2, HPCMiniscope1"
    )


def test_neuroconv_lists_and_our_keys_are_not_mixed_in_one_file(session):
    ophys = {"indicator": "GCaMP6f", "ImagingPlane": [{"indicator": "GCaMP8m"}]}
    with pytest.raises(MetadataError, match="metadata: Ophys: indicator and ImagingPlane given"):
        resolve_metadata(session, overrides={"Ophys": ophys})


def test_per_scope_keys_by_either_name_and_unknown_scopes_reported(dual, tmp_path):
    lab = write(
        tmp_path / "lab.yaml",
        "Ophys:\n  indicator: GCaMP6f\n  devices:\n    HPCMiniscope1: {location: CA1}\n"
        "    ACC_miniscope2: {location: ACC}\n    HPC_miniscope3: {location: CA3}\n",
    )
    with pytest.warns(MetadataWarning, match=r"lab\.yaml: Ophys\.devices\.HPC_miniscope3: no "):
        metadata = resolve_metadata(dual, lab_file=lab)
    assert [ophys_for(metadata, name)["location"] for name in NAMES] == ["CA1", "ACC"]
    assert [ophys_for(metadata, name)["indicator"] for name in NAMES] == ["GCaMP6f"] * 2


def test_other_modalities_are_ignored_with_a_warning(session, tmp_path):
    user = write(
        tmp_path / "user.yaml", "Ecephys:\n  Device: [{name: Probe}]\nSubject:\n  sex: M\n"
    )
    with pytest.warns(MetadataWarning, match=r"user\.yaml: Ecephys: section ignored"):
        metadata = resolve_metadata(session, user_file=user)
    assert "Ecephys" not in metadata and metadata["Subject"]["sex"] == "M"
    assert issubclass(MetadataWarning, MiniscopeWarning)


def test_a_full_file_gives_what_pynwb_accepts(session, tmp_path):
    lab = write(tmp_path / "lab.yaml", FULL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metadata = resolve_metadata(session, lab_file=lab)
    nwb, subject = metadata["NWBFile"], metadata["Subject"]
    assert isinstance(nwb["session_start_time"], datetime) and nwb["session_start_time"].tzinfo
    assert nwb["experimenter"] == ["Doe, Jane"] and nwb["keywords"] == ["miniscope", "CA1"]
    assert nwb["related_publications"] == ["doi:10.1000/xyz"]
    assert isinstance(subject["date_of_birth"], datetime)
    assert metadata["Ophys"]["excitation_lambda"] == 470.0
    assert isinstance(metadata["Ophys"]["excitation_lambda"], float)

    nwbfile = pynwb.NWBFile(**nwb)
    nwbfile.subject = Subject(**subject)
    assert nwbfile.session_start_time == nwb["session_start_time"]
    assert nwbfile.subject.age == "P90D/P120D" and nwbfile.subject.weight == "25 g"
    assert list(nwbfile.experimenter) == ["Doe, Jane"]


def test_a_bad_file_stops_the_conversion_before_anything_is_written(session, tmp_path):
    bad = write(tmp_path / "bad.yaml", "Subject:\n  sex: Male\n")
    out = tmp_path / "out" / "out.nwb"
    out.parent.mkdir()
    with pytest.raises(MetadataError, match=r"bad\.yaml: Subject\.sex = 'Male'"):
        convert_session(session.root, out, metadata_path=bad)
    assert list(out.parent.iterdir()) == []


def test_the_scope_series_unit_is_neuroconvs_unless_the_lab_says_otherwise(session, tmp_path):
    out = tmp_path / "default.nwb"
    convert_session(session.root, out, options=ConversionOptions(report=False))
    with pynwb.NWBHDF5IO(out, "r") as io:
        assert io.read().acquisition["OnePhotonSeriesMiniscope"].unit == "n.a."
    lab = write(tmp_path / "lab.yaml", "Ophys:\n  unit: a.u.\n")
    out = tmp_path / "lab.nwb"
    convert_session(session.root, out, metadata_path=lab, options=ConversionOptions(report=False))
    with pynwb.NWBHDF5IO(out, "r") as io:
        assert io.read().acquisition["OnePhotonSeriesMiniscope"].unit == "a.u."
