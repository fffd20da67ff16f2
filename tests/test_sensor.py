"""The sensor, tick by tick: what becomes a partition and a run, and what is left alone."""

from __future__ import annotations

import json
import os
import struct
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.sensors import session_sensor
from miniscope_core.synthetic import AcquisitionSpec, ScopeSpec, write_acquisition, write_session

TINY = ScopeSpec(n_frames=12, height=16, width=16, frames_per_file=5, head_orientation=False)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def storage_for(tmp_path: Path, **changes: object) -> MiniscopeStorage:
    fields = {"raw_root": str(tmp_path / "raw"), "output_root": str(tmp_path / "out")}
    return MiniscopeStorage(**{**fields, "settle_seconds": 0, **changes})


def session(raw: Path, name: str) -> Path:
    folder = raw / name
    write_session(folder, n_acquisitions=1, scope=TINY, cameras=[])
    return folder


class Daemon:
    """Ticks the sensor and applies its result to the instance the way the daemon does."""

    def __init__(self, instance: dg.DagsterInstance, storage: MiniscopeStorage) -> None:
        self.instance, self.storage, self.cursor = instance, storage, None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"storage": self.storage}
        )
        result = session_sensor(context)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        self.cursor = result.cursor
        return result

    def requested(self) -> list[str]:
        """Partition keys requested by the next tick."""
        return [request.partition_key for request in self.tick().run_requests]


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
    assert json.loads(third.cursor) == {"pending": {}}


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


def test_a_new_acquisition_in_a_known_session_converts_it_again(tmp_path, instance):
    folder = session(tmp_path / "raw", "mouse1")
    daemon = Daemon(instance, storage_for(tmp_path))
    daemon.tick()
    (first,) = daemon.tick().run_requests

    later = AcquisitionSpec(start=AcquisitionSpec().start + timedelta(hours=1), scopes=[TINY])
    write_acquisition(folder / "12_34_45", later)
    assert daemon.requested() == []
    again = daemon.tick()
    assert [r.partition_key for r in again.run_requests] == ["mouse1"]
    assert again.dynamic_partitions_requests == []  # already a partition
    assert again.run_requests[0].run_key != first.run_key  # keyed by the folder's signature


def test_at_most_max_new_per_tick_are_requested(tmp_path, instance):
    for name in ["a", "b", "c"]:
        session(tmp_path / "raw", name)
    daemon = Daemon(instance, storage_for(tmp_path, max_new_per_tick=2))
    daemon.tick()
    assert daemon.requested() == ["a", "b"]
    assert daemon.requested() == ["c"]
    assert daemon.requested() == [] and json.loads(daemon.cursor) == {"pending": {}}


def test_sessions_that_vanish_leave_the_cursor(tmp_path, instance):
    folder = session(tmp_path / "raw", "gone")
    daemon = Daemon(instance, storage_for(tmp_path, settle_seconds=3600))
    daemon.tick()
    assert "gone" in json.loads(daemon.cursor)["pending"]
    os.rename(folder, tmp_path / "moved_away")
    daemon.tick()
    assert json.loads(daemon.cursor) == {"pending": {}}
