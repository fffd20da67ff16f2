"""The code location loads, the instance settings load, and the command line converts sessions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import h5py
import pytest

from miniscope_assets.cli import main
from miniscope_assets.partitions import RAW_SESSION
from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.sensors import session_sensor
from miniscope_core.synthetic import ScopeSpec, write_session

PROJECT = Path(__file__).resolve().parents[1]
SCOPE = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)
LAB_METADATA = "Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n"


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    raw, out = tmp_path / "raw", tmp_path / "out"
    (tmp_path / "lab.yaml").write_text(LAB_METADATA)
    monkeypatch.setenv("MINISCOPE_RAW_ROOT", str(raw))
    monkeypatch.setenv("MINISCOPE_OUTPUT_ROOT", str(out))
    monkeypatch.setenv("MINISCOPE_METADATA_FILE", str(tmp_path / "lab.yaml"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return raw, out


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
    assert "nwb_file nwb_valid: passed" in printed
    assert "dropped_frames_under_threshold: passed" in printed  # 400 ms camera gap: 4 % < 5 %
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

    assert main(["sessions"]) == 0
    assert capsys.readouterr().out.count("not converted\tcomplete") == 3
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
