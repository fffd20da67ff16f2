"""End to end: the real `dagster dev` (webserver + daemon) converts a session by itself.

Deselect with `-m "not e2e"`; it takes about a minute.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import pytest
import requests
import yaml
from cluster_services import fast_daemon_path, fast_instance
from support import PROJECT

from miniscope_assets.cli import main
from miniscope_core.testing.synthetic import ScopeSpec, write_session

PROJECT = PROJECT
SCOPE = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)
KEY = "mouse1__2024_03_01"
RUNS = """{ runsOrError { ... on Runs { results { status tags { key value } } } } }"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`dagster dev` on a free localhost port, a temporary DAGSTER_HOME and raw/output roots."""
    home = tmp_path / "home"
    home.mkdir()
    # The repository's dagster.yaml, with the test instance's shorter daemon loops.
    config = fast_instance(yaml.safe_load((PROJECT / "dagster.yaml").read_text()))
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "lab.yaml").write_text("Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n")
    settings = {
        "DAGSTER_HOME": str(home),
        "MINISCOPE_RAW_ROOT": str(tmp_path / "raw"),
        "MINISCOPE_OUTPUT_ROOT": str(tmp_path / "out"),
        "MINISCOPE_METADATA_FILE": str(tmp_path / "lab.yaml"),
        "MINISCOPE_SENSOR_INTERVAL": "1",
        "MINISCOPE_SETTLE_SECONDS": "0",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(fast_daemon_path()), os.environ.get("PYTHONPATH")])
        ),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(PROJECT / "workspace.yaml")]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    log = (tmp_path / "dagster.log").open("w")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def runs(url: str) -> list[dict]:
    try:
        answer = requests.post(f"{url}/graphql", json={"query": RUNS}, timeout=10).json()
    except requests.RequestException:
        return []
    return [
        {"status": run["status"], **{tag["key"]: tag["value"] for tag in run["tags"]}}
        for run in answer["data"]["runsOrError"]["results"]
    ]


@pytest.mark.e2e
def test_the_sensor_converts_a_new_session_and_a_backfill_reconverts_it(server, tmp_path):
    write_session(tmp_path / "raw" / "mouse1" / "2024_03_01", 1, scope=SCOPE, cameras=[])
    nwb = tmp_path / "out" / KEY / f"{KEY}.nwb"

    wait_for(nwb.is_file, 120, "the NWB file")
    with h5py.File(nwb, "r") as h5:
        assert h5["acquisition/OnePhotonSeriesMiniscope/data"].shape == (40, 24, 16)
    by_sensor = wait_for(
        lambda: [r for r in runs(server) if r["status"] == "SUCCESS" and "dagster/partition" in r],
        60,
        "the run to finish",
    )
    assert by_sensor[0]["dagster/partition"] == KEY
    assert by_sensor[0]["dagster/sensor_name"] == "session_sensor"
    overview = tmp_path / "out" / "index.html"  # rewritten by its automation once converted
    done = '<span class="state converted">converted</span>'
    wait_for(lambda: overview.is_file() and done in overview.read_text(), 90, "the overview")
    assert f">{KEY}<" in overview.read_text()

    assert main(["backfill", KEY, "--overwrite", "--url", server]) == 0  # converted already
    backfilled = wait_for(
        lambda: [r for r in runs(server) if "dagster/backfill" in r and r["status"] == "SUCCESS"],
        90,
        "the backfill run to finish",
    )
    assert backfilled[0]["dagster/partition"] == KEY
