"""The sensor, tick by tick: what becomes a partition and a run, what is left alone, and what
each tick reads (a session handed over and unchanged: its folders, never its files)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
import pytest

from miniscope_assets import sensors
from miniscope_assets.assets import CONVERSION_ASSETS
from miniscope_assets.partitions import RAW_ROOT, raw_session
from miniscope_assets.registry import Handover, handovers, raw_metadata, signature_text
from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.scan import list_sessions
from miniscope_assets.sensors import Cursor, review, session_sensor
from miniscope_core.collection.status import signature
from miniscope_core.testing.synthetic import (
    AcquisitionSpec,
    ScopeSpec,
    write_acquisition,
    write_session,
)

TINY = ScopeSpec(n_frames=12, height=16, width=16, frames_per_file=5, head_orientation=False)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """The folders a tick reads file by file (every call of the file signature)."""
    folders: list[Path] = []

    def counted(folder, acquisitions=None):
        folders.append(folder)
        return signature(folder, acquisitions)

    monkeypatch.setattr(sensors, "signature", counted)
    return folders


def storage_for(tmp_path: Path, **changes: Any) -> MiniscopeStorage:
    fields: dict[str, Any] = {
        "raw_root": str(tmp_path / "raw"),
        "output_root": str(tmp_path / "out"),
    }
    return MiniscopeStorage(**{**fields, "settle_seconds": 0, **changes})


def session(raw: Path, name: str) -> Path:
    folder = raw / name
    write_session(folder, n_acquisitions=1, scope=TINY, cameras=[])
    return folder


def later_acquisition(folder: Path, name: str = "12_34_45") -> None:
    later = AcquisitionSpec(start=AcquisitionSpec().start + timedelta(hours=1), scopes=[TINY])
    write_acquisition(folder / name, later)


class Daemon:
    """Ticks the sensor and applies its result to the instance the way the daemon does; a tick's
    result shows its reports on `raw_session`, those on `raw_root` are kept in `folders`."""

    def __init__(self, instance: dg.DagsterInstance, storage: MiniscopeStorage) -> None:
        self.instance, self.storage = instance, storage
        self.cursor: str | None = None
        self.folders: list[dg.AssetMaterialization] = []

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"storage": self.storage}
        )
        result = session_sensor(context)
        assert isinstance(result, dg.SensorResult)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        self.cursor = result.cursor
        events = [e for e in result.asset_events if e.asset_key == raw_session.key]
        self.folders += [e for e in result.asset_events if e.asset_key == RAW_ROOT]
        return dg.SensorResult(
            run_requests=result.run_requests,
            skip_reason=result.skip_reason,
            cursor=result.cursor,
            dynamic_partitions_requests=result.dynamic_partitions_requests,
            asset_events=events,
        )

    def requested(self) -> list[str]:
        """Partition keys requested by the next tick."""
        return [str(request.partition_key) for request in self.tick().run_requests or []]

    def handed_over(self, *keys: str) -> None:
        """Tick until `keys` are requested (a folder is ready on its second sighting)."""
        assert self.requested() == [] and sorted(self.requested()) == sorted(keys)

    def pending(self) -> dict[str, str]:
        return Cursor.load(self.storage, None).pending


def test_a_new_complete_session_becomes_a_partition_and_a_run(tmp_path, instance):
    daemon = Daemon(instance, storage_for(tmp_path))
    assert "is not a folder" in daemon.tick().skip_reason.skip_message
    session(tmp_path / "raw", "mouse1")
    first = daemon.tick()
    assert (
        first.run_requests == []
        and "1 new or changed, not ready yet" in first.skip_reason.skip_message
    )

    second = daemon.tick()
    assert [r.partition_key for r in second.run_requests] == ["mouse1"]
    assert [r.partition_keys for r in second.dynamic_partitions_requests] == [["mouse1"]]
    (event,) = second.asset_events
    assert event.partition == "mouse1" and event.metadata["rel_path"].value == "mouse1"
    assert event.description == "complete"

    third = daemon.tick()
    assert third.run_requests == [] and third.dynamic_partitions_requests == []
    assert third.skip_reason.skip_message == "1 session folders, none new or changed"
    assert daemon.pending() == {}


def test_a_half_written_session_is_not_touched(tmp_path, instance):
    raw = tmp_path / "raw"
    unfinished = session(raw, "unfinished") / "11_34_45" / "Miniscope" / "2.avi"
    with unfinished.open("r+b") as avi:  # the DAQ fills in the RIFF size when it closes the file
        avi.seek(4)
        avi.write(struct.pack("<I", 0xFFFFFFFF))
    untimed = session(raw, "untimed")
    (untimed / "11_34_45" / "Miniscope" / "timeStamps.csv").unlink()
    daemon = Daemon(instance, storage_for(tmp_path))
    assert daemon.requested() == [] and daemon.requested() == []
    reason = daemon.tick().skip_reason.skip_message
    assert "unfinished videos: 2.avi" in reason and "has no timeStamps.csv yet" in reason
    assert instance.get_dynamic_partitions("sessions") == []


def test_an_incomplete_session_that_stopped_changing_long_ago_is_converted(tmp_path, instance):
    folder = session(tmp_path / "raw", "crashed")
    (folder / "11_34_45" / "Miniscope" / "2.avi").write_bytes(b"RIFF\xff\xff\xff\xffAVI ")
    daemon = Daemon(instance, storage_for(tmp_path, stale_seconds=0))
    daemon.tick()
    result = daemon.tick()
    assert [r.partition_key for r in result.run_requests] == ["crashed"]
    assert result.asset_events[0].description.startswith("incomplete but unchanged for")


def test_a_folder_still_changing_or_too_recent_waits(tmp_path, instance):
    folder = session(tmp_path / "raw", "copying")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.tick()
    (folder / "11_34_45" / "notes.csv").write_text("Time Stamp (ms), Note\n10,more\n")
    assert daemon.requested() == []
    assert daemon.requested() == ["copying"]

    recent = Daemon(instance, storage_for(tmp_path, settle_seconds=3600))
    session(tmp_path / "raw", "just_written")
    assert recent.requested() == [] and recent.requested() == []


def test_a_settling_folder_is_read_file_by_file_since_its_files_grow_in_place(tmp_path, instance):
    """The DAQ appends to timeStamps.csv without adding an entry: no folder mtime changes."""
    folder = session(tmp_path / "raw", "recording")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.tick()
    timestamps = folder / "11_34_45" / "Miniscope" / "timeStamps.csv"
    mtimes = os.stat(timestamps.parent).st_mtime_ns
    with timestamps.open("a") as csv:
        csv.write("12,400,0\n")
    assert os.stat(timestamps.parent).st_mtime_ns == mtimes
    assert daemon.requested() == []  # changed since the last tick
    assert daemon.requested() == ["recording"]


def test_an_unchanged_converted_session_reads_none_of_its_files(tmp_path, instance, reads):
    raw = tmp_path / "raw"
    session(raw, "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1")
    reads.clear()
    for _ in range(3):
        assert daemon.tick().skip_reason.skip_message == "1 session folders, none new or changed"
    assert reads == []

    session(raw, "mouse2")  # a new session next to it: only the new one is read
    daemon.handed_over("mouse2")
    assert {folder.name for folder in reads} == {"mouse2"}


def test_a_new_acquisition_in_a_known_session_converts_it_again(tmp_path, instance, reads):
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.tick()
    (first,) = daemon.tick().run_requests

    later_acquisition(folder)
    assert daemon.requested() == []
    again = daemon.tick()
    assert [r.partition_key for r in again.run_requests] == ["mouse1"]
    assert again.dynamic_partitions_requests == []  # already a partition
    assert again.run_requests[0].run_key != first.run_key  # keyed by the folder's signature
    assert "changed since" not in again.run_requests[0].tags["miniscope/ready"]


def test_a_video_added_to_a_device_folder_converts_it_again(tmp_path, instance):
    """A handed-over session's device folders are watched too (the lab adds a missing video)."""
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1")
    videos = folder / "11_34_45" / "Miniscope"
    shutil.copy(videos / "2.avi", videos / "3.avi")
    assert daemon.requested() == []
    assert daemon.requested() == ["mouse1"]


def test_touched_folders_with_the_same_files_are_observed_once(tmp_path, instance, reads):
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1")
    (folder / "11_34_45" / ".~lock").write_text("")  # an editor's lock file, come and gone
    (folder / "11_34_45" / ".~lock").unlink()
    reads.clear()
    seen = daemon.tick()
    assert seen.run_requests == [] and len(reads) == 1
    (event,) = seen.asset_events
    assert isinstance(event, dg.AssetObservation) and event.description == "files unchanged"
    daemon.tick()
    assert len(reads) == 1  # the new folders signature is the reference from now on


def test_an_in_place_edit_of_a_converted_session_is_found_by_the_audit(
    tmp_path, instance, monkeypatch
):
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1")
    (folder / "11_34_45" / "notes.csv").write_text("Time Stamp (ms), Note\n10,fixed\n")
    assert daemon.requested() == [] and daemon.requested() == []  # no folder mtime changed
    monkeypatch.setitem(sensors.AUDIT_PERIOD_SECONDS, sensors.HANDED, 0.0)
    assert daemon.requested() == []  # read by the audit: changed, settling
    assert daemon.requested() == ["mouse1"]


def test_at_most_max_new_per_tick_are_requested_the_newest_first(tmp_path, instance):
    for name in ["a", "b", "c"]:
        session(tmp_path / "raw", name)
    os.utime(tmp_path / "raw" / "a", (2e9, 2e9))  # "a" is the latest recording
    daemon = Daemon(instance, storage_for(tmp_path, max_new_per_tick=2))
    daemon.tick()
    assert daemon.requested() == ["a", "c"]
    assert daemon.requested() == ["b"]
    assert daemon.requested() == [] and daemon.pending() == {}


def test_a_tick_reads_at_most_its_budget_of_folders(tmp_path, instance, reads, monkeypatch):
    for name in ["a", "b", "c"]:
        session(tmp_path / "raw", name)
    monkeypatch.setattr(sensors, "EXAMINED_PER_TICK", 2)
    daemon = Daemon(instance, storage_for(tmp_path))
    first = daemon.tick()
    assert len(reads) == 2 and "1 more new or changed for later ticks" in str(first.skip_reason)
    assert len(daemon.requested()) == 2 and len(reads) == 4  # the settling ones use the budget
    assert daemon.requested() == [] and daemon.requested() == ["a"]


def test_sessions_that_vanish_leave_the_cursor(tmp_path, instance):
    folder = session(tmp_path / "raw", "gone")
    session(tmp_path / "raw", "stays")
    daemon = Daemon(instance, storage_for(tmp_path, settle_seconds=3600))
    daemon.tick()
    assert "gone" in daemon.pending()
    os.rename(folder, tmp_path / "moved_away")
    daemon.tick()
    assert list(daemon.pending()) == ["stays"]


def test_a_deleted_session_is_marked_once_and_its_partition_kept(tmp_path, instance):
    raw = tmp_path / "raw"
    folder = session(raw, "mouse1")
    session(raw, "mouse2")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1", "mouse2")
    os.rename(folder, tmp_path / "away")
    marked = daemon.tick()
    (event,) = marked.asset_events
    assert isinstance(event, dg.AssetObservation) and event.partition == "mouse1"
    assert event.metadata["deleted"].value is True and event.metadata["rel_path"].value == "mouse1"
    assert marked.run_requests == [] and daemon.tick().asset_events == []  # reported once
    assert sorted(instance.get_dynamic_partitions("sessions")) == ["mouse1", "mouse2"]
    assert handovers(instance).handed["mouse1"].deleted

    os.rename(tmp_path / "away", folder)  # back, as it was: observed once, not converted again
    back = daemon.tick()
    assert back.run_requests == [] and [e.description for e in back.asset_events] == [
        "folder back, files unchanged"
    ]
    assert not handovers(instance).handed["mouse1"].deleted and daemon.tick().asset_events == []


def test_nothing_is_marked_deleted_when_the_raw_root_looks_unmounted(tmp_path, instance):
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1")
    os.rename(folder, tmp_path / "away")  # the raw root is now an empty folder
    assert daemon.tick().asset_events == []


def test_a_folder_that_cannot_be_read_for_a_moment_is_not_deleted(tmp_path, instance):
    folder = session(tmp_path / "raw", "mouse1")
    session(tmp_path / "raw", "mouse2")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.handed_over("mouse1", "mouse2")
    (folder / "11_34_45" / "metaData.json").write_text("{")  # being rewritten
    assert daemon.tick().asset_events == []


def fail_conversion(instance: dg.DagsterInstance, storage: MiniscopeStorage, key: str) -> str:
    result = dg.materialize(
        [raw_session, *CONVERSION_ASSETS],
        selection=CONVERSION_ASSETS,
        partition_key=key,
        instance=instance,
        resources={"storage": storage},
        raise_on_error=False,
    )
    assert not result.success
    return result.run_id


def test_a_failed_session_is_requested_again_only_once_its_folder_changes(
    tmp_path, instance, monkeypatch
):
    folder = session(tmp_path / "raw", "mouse1")
    bad = folder / "nwb_metadata.yaml"
    bad.write_text("Subjct:\n  sex: F\n")
    storage = storage_for(tmp_path)
    daemon = Daemon(instance, storage)
    daemon.handed_over("mouse1")
    failed_run = fail_conversion(instance, storage, "mouse1")
    assert handovers(instance).handed["mouse1"].failed_run == failed_run
    assert daemon.requested() == [] and daemon.requested() == []  # unchanged: left alone

    bad.write_text("Subject:\n  sex: F\n")  # fixed in place: no folder mtime changes
    assert daemon.requested() == []
    monkeypatch.setitem(sensors.AUDIT_PERIOD_SECONDS, sensors.FAILED, 0.0)
    assert daemon.requested() == []  # the failed sessions' audit reads it: changed, settling
    again = daemon.tick()
    (request,) = again.run_requests
    assert request.tags["miniscope/after_failed_run"] == failed_run
    assert f"changed since conversion run {failed_run} failed" in request.tags["miniscope/ready"]
    assert again.asset_events[0].description == request.tags["miniscope/ready"]


def test_a_failed_session_given_a_new_file_is_requested_at_once(tmp_path, instance):
    folder = session(tmp_path / "raw", "mouse1")
    (folder / "nwb_metadata.yaml").write_text("Subjct:\n  sex: F\n")
    storage = storage_for(tmp_path)
    daemon = Daemon(instance, storage)
    daemon.handed_over("mouse1")
    failed_run = fail_conversion(instance, storage, "mouse1")
    os.replace(folder / "nwb_metadata.yaml", folder / "nwb_metadata.yaml.bad")  # an entry renamed
    assert daemon.requested() == []
    (request,) = daemon.tick().run_requests
    assert request.tags["miniscope/after_failed_run"] == failed_run


@pytest.mark.parametrize("recorded_by", ["an older sensor", "the webserver's report endpoint"])
def test_handovers_recorded_without_a_data_version_are_not_converted_again(
    tmp_path, instance, reads, recorded_by
):
    folder = session(tmp_path / "raw", "mouse1")
    instance.add_dynamic_partitions("sessions", ["mouse1"])
    sig = signature(folder)
    if recorded_by == "an older sensor":  # no file names, no folders signature
        legacy = f"{sig.n_files}:{sig.n_bytes}:{sig.newest_mtime_ns}"
        metadata: dict[str, Any] = {"rel_path": "mouse1", "signature": legacy}
    else:  # `miniscope-dagster backfill` through a server: metadata only
        metadata = raw_metadata(PurePosixPath("mouse1"), folder, sig)
    event = dg.AssetMaterialization(raw_session.key, partition="mouse1", metadata=metadata)
    instance.report_runless_asset_event(event)
    daemon = Daemon(instance, storage_for(tmp_path))
    first = daemon.tick()
    assert first.run_requests == [] and len(reads) == 1  # read once, observed with a version
    assert [e.description for e in first.asset_events] == ["files unchanged"]
    daemon.tick()
    assert len(reads) == 1


# The pure decision, without Dagster


def test_review_reads_only_changed_settling_and_new_folders(tmp_path, reads):
    raw = tmp_path / "raw"
    for name in ["old", "grown", "new"]:
        session(raw, name)
    found = list_sessions(raw)
    handed = {
        key: Handover(signature_text(sig), sig.folders)
        for key, sig in ((k, signature(s.folder, s.acquisitions)) for k, s in found.items())
        if key != "new"
    }
    later_acquisition(raw / "grown")
    found = list_sessions(raw)
    reads.clear()
    result = review(found, handed, Cursor(), storage_for(tmp_path), now=0.0)
    assert sorted(folder.name for folder in reads) == ["grown", "new"]
    assert sorted(result.cursor.pending) == ["grown", "new"] and result.ready == []
    assert result.examined == 2 and result.vanished == []


def test_review_reports_vanished_handovers_unless_nothing_is_found(tmp_path):
    session(tmp_path / "raw", "here")
    found = list_sessions(tmp_path / "raw")
    handed = {"here": Handover("x"), "gone": Handover("y"), "marked": Handover("z", deleted=True)}
    storage = storage_for(tmp_path)
    assert review(found, handed, Cursor(), storage, now=0.0).vanished == ["gone"]
    assert review({}, handed, Cursor(), storage, now=0.0).vanished == []


def test_the_audit_passes_go_round_at_their_own_pace(tmp_path, reads, monkeypatch):
    raw = tmp_path / "raw"
    for name in ["a", "b", "c"]:
        session(raw, name)
    found = list_sessions(raw)
    handed = {}
    for key, listed in found.items():
        sig = signature(listed.folder, listed.acquisitions)
        handed[key] = Handover(
            signature_text(sig), sig.folders, failed_run="r" if key == "c" else ""
        )
    monkeypatch.setattr(sensors, "AUDITED_PER_TICK", 1)
    storage, cursor, now = storage_for(tmp_path), Cursor(), 1000.0
    period = sensors.AUDIT_PERIOD_SECONDS
    order = []
    for _ in range(4):
        reads.clear()
        cursor = review(found, handed, cursor, storage, now).cursor
        order.append(sorted(folder.name for folder in reads))
        now += period[sensors.FAILED]  # a failed-session pass may start on every tick
    # the first passes start one period after the sensor first ran; handed ones daily
    assert order == [[], ["c"], ["c"], ["c"]]
    now += period[sensors.HANDED]
    for expected in (["a", "c"], ["b", "c"], ["c"]):
        reads.clear()
        cursor = review(found, handed, cursor, storage, now).cursor
        assert sorted(folder.name for folder in reads) == expected
        now += period[sensors.FAILED]
    assert json.loads(cursor.text())["audit"]["handed"]["after"] == "b"


def test_changed_and_new_folders_share_the_budget(tmp_path, reads, monkeypatch):
    raw = tmp_path / "raw"
    for name in ["a", "b", "c", "d", "e", "f"]:
        session(raw, name)
    found = list_sessions(raw)
    handed = {}
    for key in ["a", "b", "c"]:
        sig = signature(found[key].folder, found[key].acquisitions)
        handed[key] = Handover(signature_text(sig), sig.folders)
        later_acquisition(raw / key)
    monkeypatch.setattr(sensors, "EXAMINED_PER_TICK", 4)
    result = review(list_sessions(raw), handed, Cursor(), storage_for(tmp_path), now=0.0)
    assert sorted(folder.name for folder in reads) == ["a", "b", "e", "f"]  # the newest new ones
    assert result.deferred == 2
