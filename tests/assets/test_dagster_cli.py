"""The code location loads, the instance settings load, and the command line converts sessions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import h5py
import pytest
from support import PROJECT, dagster_roots

from miniscope_assets import remote
from miniscope_assets.cli import main
from miniscope_assets.partitions import RAW_SESSION
from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.sensors import session_sensor
from miniscope_core.testing.synthetic import CameraSpec, ScopeSpec, write_session

PROJECT = PROJECT
SCOPE = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    return dagster_roots(tmp_path, monkeypatch)


def test_definitions_validate_from_the_workspace_file(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Validation successful for code location miniscope." in done.stdout + done.stderr


def test_the_instance_settings_load_from_dagster_home(tmp_path, monkeypatch):
    shutil.copy(PROJECT / "dagster.yaml", tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as inst:
        assert inst.run_retries_enabled and inst.run_retries_max_retries == 2
        assert inst.get_concurrency_config().pool_config.default_pool_limit == 1


def test_demo_writes_and_converts_the_demo_session(roots, capsys):
    raw, out = roots
    assert main(["demo"]) == 0
    printed = capsys.readouterr().out
    nwb = out / "demo_session" / "demo_session.nwb"
    assert f"demo_session: converted -> {nwb}" in printed
    # what a scientist asks: frames, time, rate, drops per device, the verdict and the report
    assert "11_34_45 Miniscope: 300 frames" in printed and "Hz, 3 dropped (0.99 %)" in printed
    assert "BehavCam 2: 300 frames" in printed
    assert "QC: look closer" in printed  # the camera lost 3.85 % of its frames (limit 2 %)
    report = out / "demo_session" / "demo_session.nwb.qc.html"
    assert f"QC report: {report}" in printed and report.is_file()
    assert "checks: 5 of 6 passed" in printed
    assert "warn: dropped_frames_under_threshold: 3.85 % (limit 2 %): beyond the limit" in printed
    assert "dagster dev" in printed.split("next:")[1]
    with h5py.File(nwb, "r") as h5:
        assert h5["acquisition/OnePhotonSeriesMiniscope/data"].shape == (600, 200, 200)
    assert not list(raw.glob(".*"))  # written under a hidden name, then renamed


def test_backfill_in_process_converts_every_session_and_the_sensor_then_waits(
    roots, tmp_path, monkeypatch, capsys
):
    raw, out = roots
    for animal in ["m1", "m2", "m3"]:
        write_session(raw / animal / "2024_02_01", n_acquisitions=1, scope=SCOPE, cameras=[])
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    keys = ["m1__2024_02_01", "m2__2024_02_01", "m3__2024_02_01"]

    assert main(["sessions"]) == 0  # a Dagster home the sensor has not looked at yet
    assert capsys.readouterr().out.count("\tnew\tfound; the sensor has not read it yet") == 3
    assert main(["backfill", "--all", "--in-process"]) == 0
    for key in keys:
        with h5py.File(out / key / f"{key}.nwb", "r") as h5:
            assert h5["acquisition/OnePhotonSeriesMiniscope/data"].shape == (40, 24, 16)

    with dg.DagsterInstance.get() as instance:
        assert sorted(instance.get_dynamic_partitions("sessions")) == keys
        assert instance.get_materialized_partitions(RAW_SESSION) == set(keys)
        storage = MiniscopeStorage.from_env(settle_seconds=0)
        cursor = None
        for _ in range(2):  # a backfilled session is known: no second conversion
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"storage": storage}
            )
            result = session_sensor(context)
            assert result.run_requests == []
            cursor = result.cursor


def test_backfill_names_sessions_by_key_or_folder(roots, capsys):
    raw, out = roots
    for animal in ["m1", "m2"]:
        write_session(raw / animal, n_acquisitions=1, scope=SCOPE, cameras=[])
    assert main(["backfill", "m1", str(raw / "m2"), "--in-process"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["m1", "m2"]
    with pytest.raises(SystemExit, match="not a session folder"):
        main(["backfill", "m3", "--in-process"])


def test_a_stub_backfill_writes_stub_files_only(roots, capsys):
    raw, out = roots
    write_session(raw / "m1", n_acquisitions=1, scope=SCOPE, cameras=[])
    assert main(["backfill", "m1", "--in-process", "--stub"]) == 0
    assert sorted(p.name for p in (out / "m1").glob("*.nwb")) == ["m1_stub.nwb"]
    assert f"m1: converted -> {out / 'm1' / 'm1_stub.nwb'}" in capsys.readouterr().out
    assert main(["sessions"]) == 0
    assert "m1\tm1\tnot converted\tno file yet" in capsys.readouterr().out  # a stub is not it


def test_sessions_in_the_dandi_layout_are_found_where_they_were_written(roots, monkeypatch, capsys):
    raw, out = roots
    write_session(raw / "m1", n_acquisitions=1, scope=SCOPE, cameras=[])
    monkeypatch.setenv("MINISCOPE_DANDI_LAYOUT", "true")
    assert main(["backfill", "m1", "--in-process"]) == 0
    written = out / "dandiset" / "sub-m01" / "sub-m01_ses-m1_ophys.nwb"
    assert f"m1: converted -> {written}" in capsys.readouterr().out
    assert main(["sessions"]) == 0
    assert "m1\tm1\tconverted\t\n" in capsys.readouterr().out


def test_a_bad_setting_stops_the_code_location_with_one_line(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["MINISCOPE_SETTLE_SECONDS"] = "soon"
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode != 0
    expected = "SettingsError: MINISCOPE_SETTLE_SECONDS='soon': expected a number of seconds"
    assert expected in done.stdout + done.stderr


def test_the_command_line_refuses_a_bad_setting_or_flag_in_one_line(roots, monkeypatch, capsys):
    raw, out = roots
    write_session(raw / "m1", n_acquisitions=1, scope=SCOPE, cameras=[])
    assert main(["backfill", "--all", "--in-process", "--compression-level", "9"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "miniscope-dagster: compression_level=9: isal levels are 0-3, not 9"
    ]
    monkeypatch.setenv("MINISCOPE_KEEP_CHUNKS", "maybe")
    assert main(["sessions"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "miniscope-dagster: MINISCOPE_KEEP_CHUNKS='maybe': expected true or false"
    ]
    assert not out.exists()


def test_backfill_flags_become_the_run_config_of_in_process_runs(
    roots, tmp_path, monkeypatch, capsys
):
    raw, out = roots
    camera = CameraSpec(n_frames=30, height=16, width=24, frames_per_file=20)
    write_session(raw / "m1", n_acquisitions=2, scope=SCOPE, cameras=[camera])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    flags = ["--per-acquisition", "--strict", "--embed-cameras", "--compression-level", "1"]
    assert main(["backfill", "--all", "--in-process", *flags]) == 0

    choices = {
        "per_acquisition": True,
        "strict": True,
        "embed_cameras": True,
        "compression_level": 1,
    }
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
    assert {name: op["config"] for name, op in run.run_config["ops"].items()} == {
        "acquisition_metadata": choices,
        "video_chunks": choices,
        "nwb_file": choices,
    }
    with h5py.File(out / "m1" / "m1.nwb", "r") as h5:
        series = sorted(h5["acquisition"])
        assert [name for name in series if name.startswith("OnePhoton")] == [
            "OnePhotonSeriesMiniscope_11_34_45",
            "OnePhotonSeriesMiniscope_11_37_45",
        ]
        camera_data = h5["acquisition/ImageSeriesBehavCam2_11_34_45/data"]
        assert camera_data.shape == (30, 24, 16, 3) and camera_data.compression_opts == 1


class FakeServer:
    """Answers the webserver requests `remote.Server` makes; keeps what was posted."""

    def __init__(self) -> None:
        self.posted: list[dict] = []

    def post(self, url: str, json: dict, timeout: float) -> SimpleNamespace:
        self.posted.append(json)
        answer = {"data": self.answer(json.get("query", ""))}
        return SimpleNamespace(status_code=200, text="", json=lambda: answer)

    @staticmethod
    def answer(query: str) -> dict:
        if "repositoriesOrError" in query:
            job = {"name": "convert_session"}
            return {
                "repositoriesOrError": {
                    "nodes": [{"name": "r", "location": {"name": "l"}, "jobs": [job]}]
                }
            }
        if "addDynamicPartition" in query:
            return {"addDynamicPartition": {"__typename": "AddDynamicPartitionSuccess"}}
        if "launchPartitionBackfill" in query:
            success = {"__typename": "LaunchBackfillSuccess", "backfillId": "b1"}
            return {"launchPartitionBackfill": success}
        return {}  # /report_asset_materialization/ answers are not read

    def backfill_params(self) -> dict:
        (params,) = [
            body["variables"]["params"]
            for body in self.posted
            if "launchPartitionBackfill" in body.get("query", "")
        ]
        return params


def test_backfill_flags_travel_as_the_backfills_run_config(roots, monkeypatch, capsys):
    raw, _ = roots
    write_session(raw / "m1", n_acquisitions=1, scope=SCOPE, cameras=[])
    fake = FakeServer()
    monkeypatch.setattr(remote.requests, "post", fake.post)
    flags = ["--per-acquisition", "--compression-level", "3"]
    assert main(["backfill", "m1", "--url", "http://dagster.test", *flags]) == 0
    params = fake.backfill_params()
    choices = {"per_acquisition": True, "compression_level": 3}
    assert params["runConfigData"] == {
        "ops": {
            name: {"config": choices}
            for name in ["acquisition_metadata", "video_chunks", "nwb_file"]
        }
    }
    assert params["partitionNames"] == ["m1"]
    assert params["title"] == "1 sessions (per_acquisition=True, compression_level=3)"
    assert "backfill b1 of 1 sessions" in capsys.readouterr().out

    fake.posted.clear()
    assert main(["backfill", "m1", "--url", "http://dagster.test"]) == 0
    assert "runConfigData" not in fake.backfill_params()  # the settings decide


def test_a_second_backfill_converts_only_what_is_new(roots, capsys):
    raw, out = roots
    for animal in ["m1", "m2"]:
        write_session(raw / animal, n_acquisitions=1, scope=SCOPE, cameras=[])
    assert main(["backfill", "--all", "--in-process"]) == 0
    files = {key: out / key / f"{key}.nwb" for key in ["m1", "m2"]}
    written = {key: path.stat().st_mtime_ns for key, path in files.items()}
    write_session(raw / "m3", n_acquisitions=1, scope=SCOPE, cameras=[])
    capsys.readouterr()

    assert main(["backfill", "--all", "--in-process"]) == 0
    said = capsys.readouterr().out
    assert "2 sessions chosen are converted already, left as they are" in said
    assert "m3: converted" in said and "m1: converted" not in said
    assert {key: path.stat().st_mtime_ns for key, path in files.items()} == written

    assert main(["backfill", "--all", "--in-process"]) == 0
    assert "nothing to convert: the 3 sessions chosen are converted already" in (
        capsys.readouterr().out
    )
    assert main(["backfill", "m1", "--in-process", "--overwrite"]) == 0
    assert files["m1"].stat().st_mtime_ns != written["m1"]
    assert main(["backfill", "--stale", "--in-process"]) == 0
    assert "nothing to convert: the 3 sessions chosen are current" in capsys.readouterr().out


class WaitedServer(FakeServer):
    """A backfill whose run of m1 fails once, is retried and succeeds; m2's succeeds."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def answer(self, query: str) -> dict:  # type: ignore[override]
        if "partitionBackfillOrError" not in query:
            return FakeServer.answer(query)
        self.polls += 1
        first = self._run("r1", "m1", "FAILURE", retry=True)
        states = [
            ("REQUESTED", [self._run("r2", "m2", "STARTED"), first]),
            (
                "REQUESTED",
                [self._run("r3", "m1", "STARTED"), self._run("r2", "m2", "SUCCESS"), first],
            ),
            (
                "COMPLETED",
                [self._run("r3", "m1", "SUCCESS"), self._run("r2", "m2", "SUCCESS"), first],
            ),
        ]
        status, runs = states[min(self.polls, len(states)) - 1]
        return {
            "partitionBackfillOrError": {"__typename": "PartitionBackfill", "status": status},
            "runsOrError": {"__typename": "Runs", "results": runs},
        }

    @staticmethod
    def _run(run_id: str, key: str, status: str, retry: bool = False) -> dict:
        tags = [{"key": "dagster/partition", "value": key}]
        tags += [{"key": "dagster/will_retry", "value": "true"}] if retry else []
        end = 110.0 if status in ("SUCCESS", "FAILURE") else None
        return {"runId": run_id, "status": status, "startTime": 100.0, "endTime": end, "tags": tags}


def test_backfill_wait_says_each_session_as_its_run_ends(roots, monkeypatch, capsys):
    raw, _ = roots
    for animal in ["m1", "m2"]:
        write_session(raw / animal, n_acquisitions=1, scope=SCOPE, cameras=[])
    fake = WaitedServer()
    monkeypatch.setattr(remote.requests, "post", fake.post)
    monkeypatch.setattr("miniscope_assets.cli.time.sleep", lambda seconds: None)
    assert main(["backfill", "--all", "--url", "http://dagster.test", "--wait"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "m1: FAILURE, the daemon retries it in 10 s (http://dagster.test/runs/r1)",
        "m2: converted in 10 s (http://dagster.test/runs/r2)",
        "m1: converted in 10 s (http://dagster.test/runs/r3)",
        "backfill b1: 2 of 2 sessions converted (COMPLETED)",
    ]


def test_wait_follows_a_backfill_launched_earlier(roots, monkeypatch, capsys):
    fake = WaitedServer()
    monkeypatch.setattr(remote.requests, "post", fake.post)
    monkeypatch.setattr("miniscope_assets.cli.time.sleep", lambda seconds: None)
    assert main(["wait", "b1", "--url", "http://dagster.test"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "backfill b1: 2 of 2 sessions converted (COMPLETED)"
    )
