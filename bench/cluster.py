"""Benchmark of the distributed path: a backfill of N sessions in process vs through Celery.

One run, on this machine: N synthetic sessions are written into a temporary folder, then
converted four ways, each into an empty output folder:

- library only: `convert_session` on each, no Dagster (what the conversions alone cost);
- in process: `convert_in_process` (what `miniscope-dagster backfill --in-process` does), the
  sessions one after another in this process, run history in a SQLite DAGSTER_HOME;
- Celery with 1 worker, then with 2 workers: the deployment of deploy/ on loopback (PostgreSQL,
  Redis, deploy/start-head.sh, deploy/start-worker.sh with one slot each, started by the helpers
  of tests/cluster_services.py) and a backfill launched on the webserver as a user would.

Wall time runs from the launch to the end of the last run (the runs' end_time in Postgres for
Celery). Needs the [cluster] extra, PostgreSQL 15 binaries and redis-server, like the cluster
tests. bench/README.md ("Cost of distribution") defines the figures and quotes a run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster_services import Postgres, Service

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))  # the loopback servers of the cluster tests

LAB = "Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n"
ENDED = ("SUCCESS", "FAILURE", "CANCELED")
LIBRARY, IN_PROCESS = "library only", "in process"
RUN_TIMEOUT = 900.0  # seconds a backfill may take before the benchmark gives up


@dataclass
class Result:
    path: str
    workers: int
    sessions: int
    wall_s: float
    failed: int
    load_before: float  # 1-minute load average when the backfill started
    first_start_s: float | None = None  # launch -> start of the first run (Celery)
    run_s: float | None = None  # mean run duration, start -> end (Celery)

    @property
    def per_session_s(self) -> float:
        return self.wall_s / self.sessions

    @property
    def per_min(self) -> float:
        """Sessions per minute and per worker."""
        return 60 * self.sessions / self.wall_s / self.workers


def write_sessions(raw: Path, n: int, frames: int, size: int) -> dict[str, Path]:
    """N one-acquisition sessions of one Miniscope (frames x size x size FFV1, no camera)."""
    from miniscope_core.testing.synthetic import (
        DEFAULT_START,
        AcquisitionSpec,
        ScopeSpec,
        write_acquisition,
    )

    folders = {}
    for i in range(n):
        scope = ScopeSpec(n_frames=frames, height=size, width=size, frames_per_file=1000, seed=i)
        spec = AcquisitionSpec(start=DEFAULT_START, scopes=[scope], cameras=[], animal=f"m{i}")
        folder = raw / f"m{i}" / "2021_05_14"
        write_acquisition(folder / "11_34_45", spec)
        folders[f"m{i}__2021_05_14"] = folder
    return folders


@contextmanager
def environ(**variables: str) -> Iterator[None]:
    """os.environ with `variables` set for the duration."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def library(work: Path, folders: dict[str, Path], lab: Path) -> Result:
    """The conversions alone, without Dagster: `convert_session` one session after another."""
    from miniscope_core import convert_session

    out = _empty(work / "out")
    load = os.getloadavg()[0]
    began = time.time()
    for key, folder in folders.items():
        convert_session(folder, out / key / f"{key}.nwb", lab_metadata_path=lab)
    wall = time.time() - began
    return Result(LIBRARY, 1, len(folders), wall, 0, load)


def in_process(work: Path, raw: Path, folders: dict[str, Path], lab: Path) -> Result:
    """The backfill in this process, as `miniscope-dagster backfill --in-process` runs it."""
    from miniscope_assets.cli import convert_in_process
    from miniscope_assets.resources import MiniscopeStorage

    home = work / "home-sqlite"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home)
    out = _empty(work / "out")
    storage = MiniscopeStorage.from_env(raw_root=raw, output_root=out, metadata_file=lab)
    load = os.getloadavg()[0]
    with environ(DAGSTER_HOME=str(home)), contextlib.redirect_stdout(io.StringIO()):
        began = time.time()
        code = convert_in_process(storage, folders, "bench")
        wall = time.time() - began
    failed = sum(not (out / key / f"{key}.nwb").is_file() for key in folders) + (code != 0)
    return Result(IN_PROCESS, 1, len(folders), wall, failed, load)


def _empty(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def celery(
    work: Path, raw: Path, folders: dict[str, Path], lab: Path, counts: list[int]
) -> list[Result]:
    """The backfill through the daemon and `n` Celery workers for each n in `counts`."""
    from cluster_services import (
        dagster_home,
        environment,
        start_head,
        start_postgres,
        start_redis,
        start_worker,
        wait_for,
    )

    logs = _empty(work / "logs")
    out = work / "out"
    results: list[Result] = []
    with ExitStack() as stack:
        postgres = start_postgres(stack, logs)
        broker = start_redis(stack, logs)
        settings = {
            "DAGSTER_HOME": str(dagster_home(work / "home-postgres")),
            **postgres.environment(),
            "MINISCOPE_RAW_ROOT": str(raw),
            "MINISCOPE_OUTPUT_ROOT": str(out),
            "MINISCOPE_METADATA_FILE": str(lab),
            "MINISCOPE_SENSOR_INTERVAL_SECONDS": "3600",  # only the backfill converts
            "MINISCOPE_EXECUTOR": "celery",
            "MINISCOPE_CELERY_BROKER": broker,
            "MINISCOPE_CELERY_BACKEND": broker,
        }
        env = environment(**settings)
        url, _ = start_head(stack, logs, env)
        for n in counts:
            with ExitStack() as pool:
                workers = [start_worker(pool, logs, env, f"w{n}{i}") for i in range(n)]
                wait_for(partial(_all_ready, workers), 180, f"{n} Celery workers")
                _empty(out)
                results.append(_celery_backfill(postgres, url, raw, out, folders, n))
    return results


def _all_ready(workers: list[Service]) -> bool:
    from cluster_services import worker_ready

    return all(map(worker_ready, workers))


def _celery_backfill(
    postgres: Postgres, url: str, raw: Path, out: Path, folders: dict[str, Path], n: int
) -> Result:
    """Launch the backfill on the webserver; wall time until its last run ended."""
    from cluster_services import wait_for

    from miniscope_assets.cli import main as cli_main

    keys = list(folders)
    load = os.getloadavg()[0]
    (before,) = postgres.query("SELECT coalesce(max(id), 0) FROM runs")[0]
    began = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        roots = ["--raw-root", str(raw), "--output-root", str(out)]
        code = cli_main([*roots, "backfill", *keys, "--url", url])
    if code:
        raise SystemExit(f"the backfill could not be launched (exit {code})")

    def ended() -> list[tuple[str, float, float]] | None:
        query = "SELECT status, start_time, end_time FROM runs WHERE id > %s"
        rows = postgres.query(query, before)
        done = [row for row in rows if row[0] in ENDED]
        return done if len(rows) == len(keys) and len(done) == len(keys) else None

    done = wait_for(ended, RUN_TIMEOUT, f"the backfill on {n} worker(s)", 0.5)
    wall = max(end for _, _, end in done) - began
    failed = sum(status != "SUCCESS" for status, _, _ in done)
    first = min(start for _, start, _ in done) - began
    run = sum(end - start for _, start, end in done) / len(done)
    name = f"Celery, {n} worker{'s' * (n > 1)}"
    return Result(name, n, len(keys), wall, failed, load, first, run)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def report(results: list[Result], frames: int, size: int) -> str:
    """The table; overhead is per session against the in-process backfill."""
    base = next(r for r in results if r.path == IN_PROCESS)
    lines = [
        f"{base.sessions} sessions of 1 acquisition, {frames} frames {size}x{size} FFV1, "
        f"{os.cpu_count()} cores",
        "",
        "| path | workers | wall s | s/session | overhead s/session | sessions/min/worker "
        "| first run after s | mean run s | failed | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        overhead = (r.wall_s - base.wall_s) / r.sessions
        lines.append(
            f"| {r.path} | {r.workers} | {r.wall_s:.1f} | {r.per_session_s:.2f} "
            f"| {overhead:+.2f} | {r.per_min:.1f} | {_seconds(r.first_start_s)} "
            f"| {_seconds(r.run_s)} | {r.failed} | {r.load_before:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=6, help="sessions in the backfill")
    parser.add_argument("--frames", type=int, default=1000, help="frames per session")
    parser.add_argument("--size", type=int, default=304, help="frame height and width")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Celery runs")
    parser.add_argument("--work-dir", help="where the temporary folder goes")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        raw, lab = work / "raw", work / "lab.yaml"
        lab.write_text(LAB)
        folders = write_sessions(raw, args.sessions, args.frames, args.size)
        results = [library(work, folders, lab), in_process(work, raw, folders, lab)]
        results += celery(work, raw, folders, lab, args.workers)
    text = report(results, args.frames, args.size)
    print(text)
    if args.json:
        figures = [
            asdict(r) | {"per_session_s": r.per_session_s, "per_min_per_worker": r.per_min}
            for r in results
        ]
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": figures}, indent=2))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
