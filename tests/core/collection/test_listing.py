"""Listing sessions stays linear: each folder above the acquisitions is opened and listed once,
each acquisition's metaData.json read once, and no acquisition or device folder is listed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import acquisition

from miniscope_core import find_sessions, session_names
from miniscope_core.collection import discovery as collection
from miniscope_core.collection.discovery import (
    find_acquisition_folders,
    list_sessions,
    load_session,
)


@pytest.fixture
def cohort(cohort: Path) -> Path:
    """The shared cohort, plus a nested session and a lone acquisition."""
    acquisition(cohort / "day" / "extra" / "12_00_00", minutes=30)
    acquisition(cohort / "lone_12_30_00", minutes=60)
    return cohort


def test_list_sessions_is_find_sessions_with_each_sessions_own_acquisitions(cohort):
    listed = list_sessions(cohort)
    assert {name: s.folder for name, s in listed.items()} == session_names(cohort)
    assert [s.folder for s in listed.values()] == find_sessions(cohort)
    for session in listed.values():
        loaded = load_session(session.folder)
        assert sorted(session.acquisitions) == sorted(a.folder for a in loaded.acquisitions)
    lone = cohort / "lone_12_30_00"
    assert list_sessions(lone)["lone_12_30_00"].acquisitions == (lone,)
    device = lone / "Miniscope"
    assert list_sessions(device)["Miniscope"].acquisitions == ()


def test_no_acquisition_or_device_folder_is_listed_and_each_metadata_read_once(cohort, monkeypatch):
    listed_folders: list[str] = []
    opened: list[str] = []
    real_scandir, real_open = os.scandir, os.open

    def scandir(path):
        listed_folders.append(str(path))
        return real_scandir(path)

    def open_(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(collection.os, "scandir", scandir)
    monkeypatch.setattr(collection.os, "open", open_)
    acquisitions = [str(a) for a in find_acquisition_folders(cohort)]
    assert len(acquisitions) == 5
    assert not [path for path in listed_folders if path.startswith(tuple(acquisitions))]
    read = [path for path in opened if os.path.exists(path)]
    assert sorted(read) == sorted(os.path.join(a, "metaData.json") for a in acquisitions)
    assert len(listed_folders) == len(set(listed_folders))


def test_a_metadata_file_being_written_is_passed_over_or_named(tmp_path):
    day = tmp_path / "day"
    acquisition(day / "11_34_45")
    (day / "11_37_45").mkdir()
    (day / "11_37_45" / "metaData.json").write_bytes(b'{"miniscopes": [')
    assert find_sessions(day, skip_unreadable=True) == [day]
    with pytest.raises(collection.MiniscopeFormatError, match="11_37_45/metaData.json"):
        find_sessions(day)
    # the folder given is itself being written: looked at again later, not an error
    assert find_sessions(day / "11_37_45", skip_unreadable=True) == []


def test_paths_are_in_path_order_not_string_order(tmp_path):
    acquisition(tmp_path / "a-c" / "10_00_00")
    acquisition(tmp_path / "a" / "b" / "10_00_00")
    assert find_sessions(tmp_path) == [tmp_path / "a" / "b", tmp_path / "a-c"]
