"""Partition keys <-> session folders: safe for the UI, reversible, never outside the raw root."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from miniscope_assets.scan import find_sessions, is_gone, list_sessions, session_folder
from miniscope_core import find_sessions as core_sessions
from miniscope_core import session_names
from miniscope_core.collection.keys import KEY_PATTERN, parsed_rel_path, partition_key

SESSION_METADATA = {"miniscopes": ["Miniscope"], "cameras": [], "recordingStartTime": {}}


def acquisition(folder: Path) -> Path:
    """Just the session metaData.json: all that finding sessions reads."""
    folder.mkdir(parents=True)
    (folder / "metaData.json").write_text(json.dumps(SESSION_METADATA))
    (folder / "Miniscope").mkdir()
    (folder / "Miniscope" / "metaData.json").write_text('{"deviceType": "Miniscope_V4"}')
    return folder


def test_plain_paths_become_readable_keys_and_back():
    rel = PurePosixPath("alice/exp-1/mouse.A/2024_01_15")
    assert partition_key(rel) == "alice__exp-1__mouse.A__2024_01_15"
    assert parsed_rel_path("alice__exp-1__mouse.A__2024_01_15") == rel


@pytest.mark.parametrize(
    "rel",
    ["Mouse A/day 1", "a,b/c|d", "x__y/z", "trailing_/z", "dots.../z", "_hidden/z", "ü/z"],
)
def test_unsafe_paths_get_a_safe_hashed_key(rel):
    key = partition_key(PurePosixPath(rel))
    assert KEY_PATTERN.match(key) and "..." not in key
    assert parsed_rel_path(key) != PurePosixPath(rel)


def test_hashed_keys_differ_for_paths_with_the_same_slug():
    keys = {partition_key(PurePosixPath(p)) for p in ["a b/c", "a,b/c", "a  b/c"]}
    assert len(keys) == 3


def test_long_paths_are_cut_to_the_key_limit():
    key = partition_key(PurePosixPath("/".join(["folder"] * 40)))
    assert KEY_PATTERN.match(key) and len(key) <= 200


def test_sessions_are_the_parents_of_acquisition_folders(tmp_path):
    raw = tmp_path / "raw"
    acquisition(raw / "alice" / "2024_01_15" / "10_00_00")
    acquisition(raw / "alice" / "2024_01_15" / "11_00_00")
    acquisition(raw / "bob_10_00_00")  # directly in the raw root: the root is that session
    acquisition(raw / ".trash" / "s" / "10_00_00")
    acquisition(raw / "Mouse C" / "day 1" / "09_00_00")
    found = find_sessions(raw)
    hashed = partition_key(PurePosixPath("Mouse C/day 1"))
    assert found == {
        "alice__2024_01_15": (raw / "alice" / "2024_01_15").resolve(),
        "raw": raw.resolve(),
        hashed: (raw / "Mouse C" / "day 1").resolve(),
    }
    assert session_folder(raw, hashed) == (raw / "Mouse C" / "day 1").resolve()
    assert session_folder(raw, "raw") == raw.resolve()


def test_a_half_written_metadata_file_is_looked_at_later(tmp_path):
    raw = tmp_path / "raw"
    (raw / "s" / "10_00_00").mkdir(parents=True)
    (raw / "s" / "10_00_00" / "metaData.json").write_text("")
    assert find_sessions(raw) == {}


def test_a_linked_session_is_read_but_no_key_reaches_outside_the_raw_root(tmp_path):
    raw = tmp_path / "raw"
    acquisition(tmp_path / "elsewhere" / "10_00_00")
    raw.mkdir()
    (raw / "linked").symlink_to(tmp_path / "elsewhere")  # the lab's data on another disk
    assert find_sessions(raw) == {"linked": raw.resolve() / "linked"}
    assert session_folder(raw, "linked") == raw.resolve() / "linked"
    for key in ("..__elsewhere", "__elsewhere", "linked__..__..__elsewhere"):
        with pytest.raises((LookupError, PermissionError)):
            session_folder(raw, key)


def test_the_sensors_listing_is_the_librarys(tmp_path):
    raw = tmp_path / "raw"
    acquisition(raw / "alice" / "2024_01_15" / "10_00_00")
    acquisition(raw / "alice" / "2024_01_15" / "11_00_00")
    acquisition(raw / "bob" / "2024_01_16" / "09_00_00")
    acquisition(raw / "alice" / "2024_01_15" / "extra" / "12_00_00")
    listed = list_sessions(raw)
    assert [s.folder for s in listed.values()] == core_sessions(raw.resolve())
    assert {k: s.folder for k, s in listed.items()} == session_names(raw.resolve())
    assert listed["alice__2024_01_15"].acquisitions == tuple(
        raw.resolve() / "alice" / "2024_01_15" / name for name in ["10_00_00", "11_00_00"]
    )


def test_a_session_is_gone_once_its_folder_no_longer_holds_one(tmp_path):
    raw = tmp_path / "raw"
    acquisition(raw / "s" / "10_00_00")
    assert not is_gone(raw, "s")
    (raw / "s" / "10_00_00" / "metaData.json").write_text("")  # being rewritten: not gone
    assert not is_gone(raw, "s")
    (raw / "s" / "10_00_00" / "metaData.json").unlink()
    assert is_gone(raw, "s") and is_gone(raw, "never_there")
