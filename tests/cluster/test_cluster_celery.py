"""Past one machine: the executor chosen by the settings, and a real Celery cluster on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import h5py
import numpy as np
import pytest
import yaml
from cluster_services import (
    VENV_BIN,
    Postgres,
    Service,
    celery_settings,
    dagster_home,
    environment,
    files_holding,
    listening,
    require_cluster_tools,
    start_head,
    start_postgres,
    start_redis,
    start_worker,
    wait_for,
    worker_ready,
)
from dagster._serdes import deserialize_value, serialize_value

from miniscope_assets.cli import main as cli_main
from miniscope_assets.executor import _step_failure, executor_for, worker_yaml
from miniscope_assets.lost_steps import LOST_TAG
from miniscope_assets.settings import MiniscopeSettings, SettingsError
from miniscope_core import check_file, convert_session
from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    ScopeSpec,
    write_acquisition,
)


def test_the_executor_is_chosen_by_the_settings():
    assert executor_for(MiniscopeSettings()) is dg.in_process_executor
    assert executor_for(MiniscopeSettings(executor="multiprocess")) is dg.multiprocess_executor


def test_without_the_cluster_extra_celery_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_celery", None)  # import fails as if not installed
    with pytest.raises(SettingsError, match=r"^MINISCOPE_EXECUTOR='celery': dagster-celery is not"):
        executor_for(MiniscopeSettings(executor="celery"))


def test_the_workers_get_the_executors_celery_settings():
    pytest.importorskip("dagster_celery")
    settings = MiniscopeSettings(
        executor="celery", celery_broker="redis://head:6379/3", celery_requeue_seconds=60
    )
    executor = executor_for(settings)
    assert executor.name == "celery"
    config = yaml.safe_load(worker_yaml(settings))["execution"]["config"]
    assert config["broker"] == "redis://head:6379/3"
    shown = worker_yaml(settings.updated(celery_broker="redis://:pw@head:6379/3"))
    assert "redis://:**@head:6379/3" in shown and "pw" not in shown
    assert config["config_source"]["task_acks_late"] is True
    assert config["config_source"]["broker_transport_options"]["visibility_timeout"] == 60


# ---------------------------------------------------------------------------------------------
# A real cluster on loopback: PostgreSQL, Redis, the head (daemon + webserver) and two workers.

SESSIONS = 3
SMALL = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)  # time the longest axis
BIG = ScopeSpec(n_frames=2000, height=160, width=240, frames_per_file=1000)  # a step of seconds
# A killed worker's step runs elsewhere after this (and a sweep of 6 s). Celery also hands a step
# that runs longer than this to a second worker, so it stays above the longest step even on a
# loaded CI machine (30 s was not: a slow step ran twice and its runs failed).
REQUEUE_SECONDS = 60
LAB = "Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n"
SERIES = "OnePhotonSeriesMiniscope"


def _write_sessions(raw: Path) -> tuple[list[str], list[str]]:
    """A tiny session of each of SESSIONS animals and two big ones; their partition keys."""
    return _write_sessions_of(raw, [f"mouse{i}" for i in range(SESSIONS)])


def _write_sessions_of(raw: Path, animals: list[str]) -> tuple[list[str], list[str]]:
    """A tiny session of each animal and two big ones (only with the SESSIONS mice); their keys."""
    small = []
    for i, animal in enumerate(animals):
        scopes = [replace(SMALL, seed=i)]
        spec = AcquisitionSpec(start=DEFAULT_START, scopes=scopes, cameras=[], animal=animal)
        write_acquisition(raw / animal / "2021_05_14" / "11_34_45", spec)
        small.append(f"{animal}__2021_05_14")
    if len(animals) != SESSIONS:
        return small, []
    big = []
    for name in ("big", "bigger"):
        spec = AcquisitionSpec(start=DEFAULT_START, scopes=[BIG], cameras=[], animal=name)
        write_acquisition(raw / name / "2021_05_14" / "11_34_45", spec)
        big.append(f"{name}__2021_05_14")
    return small, big


def _runs(postgres: Postgres, keys: list[str]) -> dict[str, list[str]]:
    """{key: statuses of its runs, oldest first} from Postgres's runs table."""
    rows = postgres.query(
        "SELECT partition, status FROM runs WHERE partition = ANY(%s) ORDER BY id", keys
    )
    statuses: dict[str, list[str]] = {key: [] for key in keys}
    for key, status in rows:
        statuses[key].append(status)
    return statuses


def _all_done(postgres: Postgres, keys: list[str]) -> dict[str, list[str]] | None:
    """The runs of `keys` once each key's last run has ended (else None)."""
    statuses = _runs(postgres, keys)
    ended = {"SUCCESS", "FAILURE", "CANCELED"}
    if all(runs and runs[-1] in ended for runs in statuses.values()):
        return statuses
    return None


def _step_pid(postgres: Postgres, key: str, step: str) -> int | None:
    """The PID of the process that started `step` of `key`'s first run, once it has."""
    rows = postgres.query(
        "SELECT e.event FROM event_logs e JOIN runs r ON r.run_id = e.run_id"
        " WHERE r.partition = %s AND e.dagster_event_type = 'STEP_START' AND e.step_key = %s"
        " ORDER BY e.id LIMIT 1",
        key,
        step,
    )
    if not rows:
        return None
    event = deserialize_value(rows[0][0], dg.EventLogEntry).dagster_event
    assert event is not None and event.pid is not None
    return event.pid


def _runs_until_success(postgres: Postgres, key: str) -> list[str] | None:
    """The statuses of `key`'s runs once the last one succeeded (a failure may be retried)."""
    statuses = _runs(postgres, [key])[key]
    return statuses if statuses and statuses[-1] == "SUCCESS" else None


def _step_failures(postgres: Postgres, key: str) -> list[str]:
    """The message of every failed step of `key`'s runs, oldest first."""
    rows = postgres.query(
        "SELECT e.step_key, e.event FROM event_logs e JOIN runs r ON r.run_id = e.run_id"
        " WHERE r.partition = %s AND e.dagster_event_type = 'STEP_FAILURE' ORDER BY e.id",
        key,
    )
    failures = []
    for step, text in rows:
        event = deserialize_value(text, dg.EventLogEntry).dagster_event
        message = (event.message if event is not None else None) or ""
        failures.append(f"{step}: {message.splitlines()[0] if message else '(no message)'}")
    return failures


def _wait_for_runs(
    postgres: Postgres, keys: list[str], seconds: float, what: str, done: Callable[[], Any]
) -> Any:
    """`wait_for(done)`, and on a timeout the runs' statuses and step failures in the message:
    a CI log is all there is to go by."""
    try:
        return wait_for(done, seconds, what, 1.0)
    except AssertionError as error:
        failures = {key: _step_failures(postgres, key) for key in keys}
        runs = _runs(postgres, keys)
        raise AssertionError(f"{error}; runs: {runs}; step failures: {failures}") from None


def _series(path: Path) -> dict[str, np.ndarray]:
    """Pixels and timestamps of every acquisition series of an NWB file."""
    with h5py.File(path, "r") as h5:
        return {
            f"{name}/{field}": h5["acquisition"][name][field][()]
            for name in h5["acquisition"]
            for field in ("data", "timestamps")
            if field in h5["acquisition"][name]
        }


def _same_as_in_process(raw: Path, out: Path, key: str, lab: Path, reference: Path) -> None:
    folder = raw / key.replace("__", "/")
    expected = reference / f"{key}.nwb"
    convert_session(folder, expected, lab_metadata_path=lab)
    got, want = _series(out / key / f"{key}.nwb"), _series(expected)
    assert got.keys() == want.keys() and f"{SERIES}/data" in got
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{key}: {name}")


def _checked(out: Path, key: str) -> None:
    check = check_file(out / key / f"{key}.nwb")
    assert check.passed, f"{key}: {check.problems}"


def _backfill_and_wait(env: dict[str, str], url: str, *args: str) -> subprocess.Popen[str]:
    """`miniscope-dagster backfill ARGS --url URL --wait` as a user runs it, output kept."""
    command = [str(VENV_BIN / "miniscope-dagster"), "backfill", *args, "--url", url, "--wait"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def _ended(process: subprocess.Popen[str], seconds: float) -> tuple[int, str]:
    out, _ = process.communicate(timeout=seconds)
    return process.returncode, out


def _short_lines_with_keys(worker: Service, keys: list[str]) -> None:
    """The worker logs a short line per step naming the session, not Celery's event dump."""
    log = worker.log.read_text(errors="replace")
    assert "succeeded in" not in log
    steps = [line for line in log.splitlines() if "(run " in line]
    assert steps and all(len(line) < 200 for line in steps), steps[:3]
    assert {key for key in keys if re.search(rf"{key} \w+ \(run \w+\): success in", log)}


@pytest.mark.cluster
def test_a_backfill_runs_on_two_celery_workers_and_survives_a_killed_worker(tmp_path, monkeypatch):
    require_cluster_tools()
    began = time.time()
    raw, out, lab = tmp_path / "raw", tmp_path / "out", tmp_path / "lab.yaml"
    small, big = _write_sessions(raw)
    lab.write_text(LAB)
    logs = tmp_path / "logs"
    logs.mkdir()
    secrets = tmp_path / "secrets"  # the lab's protected environment file: meant to hold it
    secrets.mkdir(mode=0o700)
    with ExitStack() as stack:
        postgres = start_postgres(stack, logs)
        broker = start_redis(stack, logs)
        home = dagster_home(tmp_path / "home", max_concurrent_runs=SESSIONS, default_limit=2)
        settings = {
            **celery_settings(home, postgres, broker, raw, out, lab),
            "MINISCOPE_CELERY_REQUEUE_SECONDS": str(REQUEUE_SECONDS),
        }
        env = environment(**settings)
        workers = {
            "one": start_worker(stack, logs, env, "one"),
            "two": start_worker(stack, logs, env, "two", env_file=secrets / "env"),
        }
        url, _ = start_head(stack, logs, env)
        # The UI (which can launch and delete runs) listens on this machine only by default.
        assert listening(int(url.rsplit(":", 1)[1])) == {"127.0.0.1"}
        wait_for(lambda: all(map(worker_ready, workers.values())), 120, "two Celery workers")
        for name, value in settings.items():
            monkeypatch.setenv(name, value)

        # The tiny sessions through the daemon: every run succeeds, the steps spread over both.
        assert cli_main(["backfill", *small, "--url", url]) == 0
        done = partial(_all_done, postgres, small)
        runs = _wait_for_runs(postgres, small, 300, "the backfill's runs", done)
        assert runs == {key: ["SUCCESS"] for key in small}
        hosts = {worker for key in small for _, worker in postgres.step_workers(key)}
        assert hosts == {"one", "two"}
        (events,) = postgres.query("SELECT count(*) FROM event_logs")[0:1]
        assert events[0] > SESSIONS * 4 * 3  # the runs' events are in Postgres too
        _short_lines_with_keys(workers["two"], small)
        # Asked again, the backfill converts nothing: they are converted.
        assert cli_main(["backfill", *small, "--url", url]) == 0
        assert _runs(postgres, small) == {key: ["SUCCESS"] for key in small}

        # A worker killed (SIGKILL, the whole machine gone) while it decodes a big session: its
        # step goes back to the queue and the other worker completes the run. Waiting for the
        # backfill says the step lost, and no file keeps the broker's password.
        waiting = _backfill_and_wait(env, url, big[0])
        taken = wait_for(
            lambda: postgres.step_workers(big[0], "video_chunks"),
            120,
            "a worker to take the big session's video_chunks",
            0.1,
        )
        first = taken[0][1]
        workers.pop(first).kill()
        password = broker.split(":")[2].split("@")[0]
        roots = [Path(tempfile.gettempdir()), home]
        held = [
            path for path in files_holding(password, roots, began) if secrets not in path.parents
        ]
        assert not held, f"the Redis password is left in {held}"
        (survivor,) = workers
        code, said = _ended(waiting, 300)
        assert code == 0, said
        assert f"{big[0]} video_chunks: no live worker runs it (its worker was lost)" in said
        tags = postgres.query("SELECT value FROM run_tags WHERE key = %s", LOST_TAG)
        assert [value.split(";")[0] for (value,) in tags] == [  # the run says it in the UI
            "video_chunks: no live worker runs it (its worker was lost)"
        ]
        assert f"{big[0]}: converted in" in said
        taken = postgres.step_workers(big[0], "video_chunks")
        assert [name for _, name in taken] == [first, survivor]

        # The process running a step killed under a live worker (as by the out-of-memory
        # killer): the step fails, so does the run, and the daemon retries the run, which
        # completes.
        assert cli_main(["backfill", big[1], "--url", url]) == 0
        pid = wait_for(lambda: _step_pid(postgres, big[1], "video_chunks"), 120, "a step", 0.1)
        os.kill(pid, signal.SIGKILL)
        done = partial(_runs_until_success, postgres, big[1])
        runs = _wait_for_runs(postgres, big[1:], 300, "the retried run", done)
        assert runs == ["FAILURE", "SUCCESS"]

        # A session recorded later: a second backfill of everything converts it alone, leaving
        # every finished file as it was.
        files = list(out.rglob("*.nwb"))
        written = {path: path.stat().st_mtime_ns for path in files}
        (new,), _ = _write_sessions_of(raw, ["late"])
        code, said = _ended(_backfill_and_wait(env, url, "--all"), 300)
        assert code == 0, said
        assert f"{len(small) + len(big)} sessions chosen are converted already" in said
        assert f"{new}: converted in" in said and "1 of 1 sessions converted" in said
        assert {path: path.stat().st_mtime_ns for path in files} == written
        assert _runs(postgres, [*small, big[0], new]) == {
            key: ["SUCCESS"] for key in [*small, big[0], new]
        }

    # Outputs: valid, the same pixels and timestamps as in process, nothing half-written.
    reference = tmp_path / "reference"
    for key in [*small, *big, new]:
        _checked(out, key)
        _same_as_in_process(raw, out, key, lab, reference)
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("m1/metaData.json: not JSON"), "ValueError: m1/metaData.json: not JSON"),
        (dg.Failure(description="m1: no timeStamps.csv\nmore"), "m1: no timeStamps.csv"),
    ],
)
def test_a_workers_line_for_a_failed_step_gives_the_reason(error, reason):
    @dg.op
    def broken() -> None:
        raise error

    @dg.job
    def job() -> None:
        broken()

    result = job.execute_in_process(raise_on_error=False)
    events = [serialize_value(event) for event in result.all_events]
    assert _step_failure(events) == reason
    assert _step_failure(events[:1]) is None
