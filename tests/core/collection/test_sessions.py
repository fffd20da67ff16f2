"""What a session is: collections are listed and converted one file per session, never merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import acquisition, read_nwb

from miniscope_core import CollectionError, MiniscopeFormatError, discover, find_sessions
from miniscope_core.cli import main


def test_a_collection_lists_its_sessions(cohort):
    assert find_sessions(cohort) == [
        cohort / "mouseA" / "2021_05_14",
        cohort / "mouseB" / "2021_05_14",
    ]
    with pytest.raises(CollectionError, match="holds 2 sessions, which are never merged"):
        discover(cohort)


def test_convert_refuses_a_collection_and_names_the_command(cohort, tmp_path, capsys):
    out = tmp_path / "merged.nwb"
    assert main(["convert", str(cohort), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"miniscope-nwb convert {cohort} --output-dir DIR" in err
    assert str(cohort / "mouseA" / "2021_05_14") in err
    assert str(cohort / "mouseB" / "2021_05_14") in err
    assert "Traceback" not in err and not out.exists()


def test_output_dir_writes_one_file_per_session(cohort, tmp_path, capsys):
    out = tmp_path / "nwb"
    assert main(["convert", str(cohort), "--output-dir", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [  # each with its QC report beside it
        "mouseA__2021_05_14.nwb",
        "mouseA__2021_05_14.nwb.qc.html",
        "mouseB__2021_05_14.nwb",
        "mouseB__2021_05_14.nwb.qc.html",
    ]
    for name, animal, frames in (("mouseA", "mouseA", 24), ("mouseB", "mouseB", 12)):
        with read_nwb(out / f"{name}__2021_05_14.nwb") as nwb:
            assert nwb.subject.subject_id == animal
            assert nwb.acquisition["OnePhotonSeriesMiniscope"].data.shape[0] == frames
    # a second run skips what exists instead of replacing it
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["convert", str(cohort), "--output-dir", str(out), "--quiet"]) == 0
    assert "2 skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_inspect_reports_each_session_of_a_collection(cohort, capsys):
    assert main(["inspect", str(cohort), "--json", "--no-decode"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [Path(s["root"]).parent.name for s in listing["sessions"]] == ["mouseA", "mouseB"]
    assert [len(s["acquisitions"]) for s in listing["sessions"]] == [2, 1]


def test_two_animals_in_one_session_folder_are_refused(tmp_path):
    day = tmp_path / "day"
    acquisition(day / "11_34_45", "mouseA", 0)
    acquisition(day / "11_37_45", "mouseB", 3)
    with pytest.raises(MiniscopeFormatError, match=r"11_34_45 is 'mouseA', 11_37_45 is 'mouseB'"):
        discover(day)


def test_each_folder_shape_is_one_session(tmp_path):
    day = tmp_path / "day"
    first = acquisition(day / "11_34_45", minutes=0)
    acquisition(day / "11_37_45", minutes=3)
    assert find_sessions(day) == [day]
    assert find_sessions(first) == [first]  # an acquisition folder given by itself
    assert find_sessions(first / "Miniscope") == [first / "Miniscope"]  # a lone device folder
    assert [a.label for a in discover(day).acquisitions] == ["11_34_45", "11_37_45"]
    # a session folder below another one is a session of its own, not merged into it
    acquisition(day / "extra" / "12_00_00", minutes=30)
    assert find_sessions(day) == [day, day / "extra"]
    with pytest.raises(CollectionError):
        discover(day)


def test_overlapping_acquisitions_are_refused_unless_kept_apart(tmp_path):
    """A copied acquisition folder would make one series run backwards in time."""
    from miniscope_core import ConversionOptions, convert_session

    day = tmp_path / "day"
    acquisition(day / "11_34_45", minutes=0)
    acquisition(day / "11_34_45_copy", minutes=0)
    out = tmp_path / "o.nwb"
    with pytest.raises(MiniscopeFormatError, match=r"before acquisition 11_34_45 ends.*--per-acq"):
        convert_session(day, out)
    assert not out.exists()
    result = convert_session(day, out, ConversionOptions(per_acquisition=True))
    assert sorted(result.series_frames.values()) == [12, 12]
