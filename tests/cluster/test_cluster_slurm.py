"""SLURM for real: deploy/slurm/miniscope-worker.sbatch submitted to a one-node SLURM on 127.0.0.1.

The job's worker joins the Celery pool of a real head (PostgreSQL, Redis, Dagster daemon and
webserver, all on loopback), a backfill converts through it alone, and `scancel` of the job while
it decodes a session ends, once a new job brings a worker back, in a retried and completed run
with valid, complete outputs. Needs root, slurm-wlm and munge besides the cluster tools.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from cluster_services import (
    DEPLOY,
    Postgres,
    celery_settings,
    dagster_home,
    environment,
    from_env_file,
    require,
    require_cluster_tools,
    start_head,
    start_postgres,
    start_redis,
    wait_for,
)
from slurm_cluster import SlurmCluster, needs, slurm_cluster

from miniscope_assets.cli import main as cli_main
from miniscope_core import check_file, convert_session
from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    ScopeSpec,
    write_acquisition,
)

pytestmark = pytest.mark.cluster

SBATCH = DEPLOY / "slurm" / "miniscope-worker.sbatch"
TINY_SESSIONS = 3
# More frames than pixels on a side: nwbinspector takes the longest axis for time.
SMALL = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)
BIG = ScopeSpec(n_frames=3000, height=160, width=240, frames_per_file=1000)  # decoding takes s
LAB = "Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n"
ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


def _write_sessions(raw: Path) -> tuple[list[str], str]:
    """Small sessions of three animals and a big one; their partition keys."""
    scopes = {f"mouse{i}": replace(SMALL, seed=i) for i in range(TINY_SESSIONS)} | {"big": BIG}
    for animal, scope in scopes.items():
        spec = AcquisitionSpec(start=DEFAULT_START, scopes=[scope], cameras=[], animal=animal)
        write_acquisition(raw / animal / "2021_05_14" / "11_34_45", spec)
    keys = [f"{animal}__2021_05_14" for animal in scopes]
    return keys[:-1], keys[-1]


def _submit(slurm: SlurmCluster, env: dict[str, str], logs: Path) -> tuple[str, Path]:
    """sbatch the worker script with `env` exported; the job id and its output file."""
    output = logs / "slurm-%j.out"
    job = slurm.run("sbatch", "--parsable", f"--output={output}", str(SBATCH), env=env).strip()
    return job, logs / f"slurm-{job}.out"


def _worker_ready(slurm: SlurmCluster, job: str, output: Path) -> bool:
    """The job's Celery worker said `ready.` (it fails fast if the job ended first)."""
    text = output.read_text(errors="replace") if output.exists() else ""
    if " ready." in text:
        return True
    assert slurm.job_state(job) in ("PENDING", "CONFIGURING", "RUNNING"), f"job {job}:\n{text}"
    return False


def _runs(postgres: Postgres, keys: list[str]) -> dict[str, list[str]] | None:
    """{key: statuses of its runs, oldest first} once every key's last run ended, else None."""
    rows = postgres.query(
        "SELECT partition, status FROM runs WHERE partition = ANY(%s) ORDER BY id", keys
    )
    statuses: dict[str, list[str]] = {key: [] for key in keys}
    for key, status in rows:
        statuses[key].append(status)
    return statuses if all(s and s[-1] in ENDED for s in statuses.values()) else None


def _succeeded(postgres: Postgres, key: str) -> dict[str, list[str]] | None:
    """`_runs` of `key` once its last run succeeded (a failed one may yet be retried)."""
    runs = _runs(postgres, [key])
    return runs if runs is not None and runs[key][-1] == "SUCCESS" else None


def _takers(postgres: Postgres, key: str, step: str | None = None) -> list[str]:
    """The Celery worker NAME of every execution of `key`'s steps (of `step` only, if given)."""
    return [worker for _, worker in postgres.step_workers(key, step)]


def _pixels_and_times(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        group = h5["acquisition"]
        return {
            f"{name}/{field}": group[name][field][()]
            for name in group
            for field in ("data", "timestamps")
            if field in group[name]
        }


def _assert_converted(raw: Path, out: Path, key: str, lab: Path, reference: Path) -> None:
    """A valid NWB file with the pixels and timestamps of an in-process conversion."""
    nwb = out / key / f"{key}.nwb"
    check = check_file(nwb)
    assert check.passed, f"{key}: {check.problems}"
    expected = reference / f"{key}.nwb"
    convert_session(raw / key.replace("__", "/"), expected, lab_metadata_path=lab)
    got, want = _pixels_and_times(nwb), _pixels_and_times(expected)
    assert got.keys() == want.keys() and any(name.endswith("/data") for name in got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{key}: {name}")


def test_a_slurm_job_worker_converts_a_backfill_and_scancel_ends_in_a_retried_run(
    tmp_path, monkeypatch
):
    require_cluster_tools()
    lacking = needs()
    require(lacking or "", lacking is None)
    raw, out, lab = tmp_path / "raw", tmp_path / "out", tmp_path / "lab.yaml"
    logs = tmp_path / "logs"
    tiny, big = _write_sessions(raw)
    lab.write_text(LAB)
    logs.mkdir()
    with ExitStack() as stack:
        postgres = start_postgres(stack, logs)
        broker = start_redis(stack, logs)
        home = dagster_home(tmp_path / "home", max_concurrent_runs=3)
        settings = celery_settings(home, postgres, broker, raw, out, lab)
        env = environment(**settings)
        slurm = stack.enter_context(slurm_cluster())
        first, output = _submit(slurm, env, logs)
        url, _ = start_head(stack, logs, env)
        wait_for(lambda: _worker_ready(slurm, first, output), 120, f"the worker of job {first}")
        assert f"concurrency: {slurm.cpus} (prefork)" in output.read_text()  # the node's cores
        for name, value in settings.items():
            monkeypatch.setenv(name, value)

        # The job's worker is the pool: it takes every step of the backfill.
        assert cli_main(["backfill", *tiny, "--url", url]) == 0
        runs = wait_for(lambda: _runs(postgres, tiny), 180, "the backfill's runs", 1.0)
        assert runs == {key: ["SUCCESS"] for key in tiny}
        assert {w for key in tiny for w in _takers(postgres, key)} == {f"slurm-{first}"}

        # scancel while the job's worker decodes the big session: the step fails with its
        # worker; once a new job brings a worker back, the retried run completes there. That
        # job has the settings only from the file ENV_FILE names, which its node reads.
        assert cli_main(["backfill", big, "--url", url]) == 0
        wait_for(lambda: _takers(postgres, big, "video_chunks"), 120, "video_chunks taken", 0.1)
        slurm.run("scancel", first)
        wait_for(lambda: not slurm.job_state(first), 60, f"job {first} to end", 0.5)
        second, output = _submit(slurm, from_env_file(env, tmp_path / "env"), logs)
        wait_for(lambda: _worker_ready(slurm, second, output), 120, f"the worker of job {second}")
        # Until a run succeeds: the failed run ends some seconds before the daemon's retry
        # exists (Dagster's retry daemon looks every 5 s), so an ended run is not yet the end.
        runs = wait_for(lambda: _succeeded(postgres, big), 240, "the big session's retry", 1.0)
        assert runs[big][-1] == "SUCCESS" and len(runs[big]) >= 2, runs
        takers = _takers(postgres, big, "video_chunks")
        assert takers[0] == f"slurm-{first}" and takers[-1] == f"slurm-{second}", takers
        slurm.run("scancel", second)

    reference = tmp_path / "reference"
    for key in [*tiny, big]:
        _assert_converted(raw, out, key, lab, reference)
    assert not list(out.rglob("*.partial"))  # nothing half-written is left
