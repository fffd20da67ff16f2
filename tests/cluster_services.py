"""Real servers on 127.0.0.1 for the cluster tests: PostgreSQL, Redis, Dagster, Celery workers.

Each server is a `Service`: started in its own process group with its output in a log file, and
stopped by its PID (SIGTERM to the group, then SIGKILL) when the `ExitStack` given to it closes,
even if the test failed. `require` skips a test whose binaries are missing, except in CI (CI=true),
where it fails: `.ci/run` installs them, so their absence there is a broken setup, not a skip.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT

PROJECT = PROJECT
DEPLOY = PROJECT / "deploy"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = Path(sys.executable).parent
PG_USER, PG_DB = "dagster", "dagster"


def require(what: str, present: bool) -> None:
    """Skip the test if `what` is missing (fail in CI, which must have it)."""
    if present:
        return
    reason = f"cluster test needs {what}"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason} (.ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def require_cluster_tools() -> None:
    """PostgreSQL 15 server binaries, redis-server and the [cluster] extra."""
    require(f"PostgreSQL binaries in {POSTGRES_BIN}", (POSTGRES_BIN / "initdb").is_file())
    require("redis-server (apt-get install redis-server)", shutil.which("redis-server") is not None)
    for module in ("dagster_celery", "dagster_postgres"):
        require(f"{module} (the [cluster] extra)", _importable(module))


def _importable(module: str) -> bool:
    with contextlib.suppress(ImportError):
        __import__(module)
        return True
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.5) -> Any:
    """The first true value of `condition()`; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@dataclass
class Service:
    """One server process (and its children, in its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL to the whole group at once, as when the machine dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, first: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> None:
        """`first` to the group, SIGKILL to the group if it is still running after `grace` s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        # Children that outlive the leader (a pool process) are still in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start(
    stack: ExitStack,
    name: str,
    command: Sequence[str],
    logs: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    first: signal.Signals = signal.SIGTERM,
) -> Service:
    """Start `command` as a Service stopped (by PID) when `stack` closes."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            user=user,
            start_new_session=True,
        )
    service = Service(name, process, log)
    stack.callback(service.stop, first)
    return service


def _unprivileged() -> str | None:
    """The user PostgreSQL runs as: `nobody` when we are root (initdb refuses root), else us."""
    if os.geteuid() != 0:
        return None
    pwd.getpwnam("nobody")
    return "nobody"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str
    service: Service

    def environment(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": PG_DB,
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2  # the driver dagster-postgres installs

        with (
            psycopg2.connect(
                host="127.0.0.1", port=self.port, dbname=PG_DB, user=PG_USER, password=self.password
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def step_workers(self, key: str, step: str | None = None) -> list[tuple[str, str]]:
        """(step, worker NAME) of every execution of a step (`step` only, if given) of `key`'s
        runs, in order, from the engine events dagster-celery writes as a worker (NAME@host)
        takes it."""
        import dagster as dg
        from dagster._serdes import deserialize_value

        rows = self.query(
            "SELECT e.event FROM event_logs e JOIN runs r ON r.run_id = e.run_id"
            " WHERE r.partition = %s AND e.dagster_event_type = 'ENGINE_EVENT'"
            " AND e.event LIKE %s ORDER BY e.id",
            key,
            "%in celery worker%",
        )
        taken = []
        for (text,) in rows:
            event = deserialize_value(text, dg.EventLogEntry).dagster_event
            assert event is not None and event.engine_event_data is not None
            worker = str(event.engine_event_data.metadata["Celery worker"].value)
            if step in (None, event.step_key):
                taken.append((str(event.step_key), worker.split("@")[0]))
        return taken


def celery_settings(
    home: Path, postgres: Postgres, broker: str, raw: Path, out: Path, lab: Path
) -> dict[str, str]:
    """The MINISCOPE_* settings and DAGSTER_HOME that a head and its Celery workers share."""
    return {
        "DAGSTER_HOME": str(home),
        **postgres.environment(),
        "MINISCOPE_RAW_ROOT": str(raw),
        "MINISCOPE_OUTPUT_ROOT": str(out),
        "MINISCOPE_METADATA_FILE": str(lab),
        "MINISCOPE_SENSOR_INTERVAL_SECONDS": "3600",  # the backfill converts, not the sensor
        "MINISCOPE_EXECUTOR": "celery",
        "MINISCOPE_CELERY_BROKER": broker,
        "MINISCOPE_CELERY_BACKEND": broker,
    }


def start_postgres(stack: ExitStack, logs: Path) -> Postgres:
    """A throwaway cluster (initdb in a temporary folder) on 127.0.0.1 with a password, and a
    database `dagster` owned by user `dagster`. The folder is removed when `stack` closes."""
    user = _unprivileged()
    folder = Path(tempfile.mkdtemp(prefix="miniscope-pg-"))  # not under pytest's root-only tmp
    stack.callback(shutil.rmtree, folder, True)
    password = os.urandom(12).hex()
    (folder / "password").write_text(password)
    if user:
        owner = pwd.getpwnam(user)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        os.chown(folder / "password", owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "-E", "UTF8"]
    initdb += ["--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={folder}/password"]
    subprocess.run(initdb, check=True, capture_output=True, user=user, timeout=120, cwd=folder)
    port = free_port()
    server = [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1"]
    server += ["-p", str(port), "-k", str(folder), "-c", "fsync=off"]
    # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for clients to leave).
    service = start(stack, "postgres", server, logs, cwd=folder, user=user, first=signal.SIGINT)
    ready = [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
    wait_for(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 60, "Postgres")
    postgres = Postgres(port, password, service)
    createdb = [str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
    createdb += ["-U", PG_USER, PG_DB]
    env = {**os.environ, "PGPASSWORD": password}
    subprocess.run(createdb, check=True, capture_output=True, env=env, timeout=60)
    return postgres


def start_redis(stack: ExitStack, logs: Path) -> str:
    """redis-server on a free 127.0.0.1 port with a password (`requirepass`, as docs/cluster.md
    sets it), nothing saved to disk; its URL, the password in it."""
    port = free_port()
    password = os.urandom(12).hex()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(logs), "--requirepass", password]
    start(stack, "redis", command, logs)
    wait_for(lambda: _answers(port, password), 30, "Redis")
    return f"redis://:{password}@127.0.0.1:{port}/0"


def _answers(port: int, password: str) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
        s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
        return s.recv(32).startswith(b"+OK\r\n+PONG")
    return False


def listening(port: int) -> set[str]:
    """The addresses a TCP socket listens on at `port` (IPv4 dotted, IPv6 as hex), from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    if len(address) == 8:
                        address = socket.inet_ntoa(bytes.fromhex(address)[::-1])
                    found.add(address)
    return found


def files_holding(secret: str, roots: Sequence[Path], since: float) -> list[Path]:
    """Files under `roots` changed since `since` (a time.time()) whose bytes contain `secret`
    (files of 16 MB or more, data rather than configuration, are not read)."""
    needle = secret.encode()
    held = []
    # os.walk, not rglob: other tests' temporary folders vanish from /tmp mid-walk, and
    # os.walk skips a folder it can no longer list where rglob raises.
    paths = (Path(top, name) for root in roots for top, _, names in os.walk(root) for name in names)
    for path in paths:
        with contextlib.suppress(OSError):
            stat = path.stat()
            if not path.is_file() or stat.st_mtime < since or stat.st_size >= 1 << 24:
                continue
            if needle in path.read_bytes():
                held.append(path)
    return held


# The test instance's run queue is looked at every second (Dagster's default: 5 s); the
# deployment's own dagster.yaml keeps Dagster's defaults. The run retries keep theirs (the event
# log consumer daemon's 5 s): Dagster 1.13 stores a run's RUN_FAILURE event before it marks the
# run failed, and a consumer that looks in between never retries that run. At 1 s, on a loaded
# machine, the Celery test met that race (its retried run never came, twice in a day).
FAST_RUN_QUEUE = {
    "module": "dagster.core.run_coordinator",
    "class": "QueuedRunCoordinator",
    "config": {"dequeue_interval_seconds": 1},
}

# Two daemon loops have no setting: the backfill daemon sleeps 30 s between iterations
# (dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS, read by dagster._daemon.backfill
# on each loop; dagster PR #11860 proposing a shorter one is unmerged) and the sensor daemon 5 s
# (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME). In the tests' processes only, this
# sitecustomize sets both to 2 s as those modules are imported (no import of dagster before
# then). A name Dagster no longer has is left alone: the tests then wait as long as before.
# Not 1 s: each loop costs CPU whether or not anything changed (a profile of the Celery test's
# daemon at 1 s: 57 % of a core, most of it evaluating the backfill), on two shared cores.
# The daemon also replaces its code server every RELOAD_WORKSPACE_INTERVAL (60 s), to see new
# code: the tests' code does not change, and each new server cost ~5 s of CPU (a test's daemon
# ran 5 in 5 minutes), so the tests' daemons keep theirs.
FAST_LOOPS = {
    "dagster._daemon.controller": {
        "DEFAULT_DAEMON_INTERVAL_SECONDS": 2,
        "RELOAD_WORKSPACE_INTERVAL": 24 * 3600,
    },
    "dagster._daemon.sensor": {"MIN_INTERVAL_LOOP_TIME": 2},
}
# The backfill daemon at 2 s meets, 15 times as often, a race of Dagster 1.13's (docs/cluster.md):
# a run is marked failed a moment before it is tagged `dagster/will_retry`, and a backfill
# evaluated in that moment counts the run as finally failed and ends, and a backfill that ended
# stops the retry ("Not retrying run since it is part of a backfill that is in a terminal
# state"); the fresh-clone CI met it in two of four runs. The tests' daemons close it: with run
# retries on, Dagster tags every failed run, so a backfill with a failed run not yet tagged is
# not complete until it is. A name Dagster no longer has is left alone.
RETRY_DECIDED = {"dagster._core.execution.asset_backfill": "backfill_runs_are_complete"}
_SITECUSTOMIZE = f"""\
import importlib.machinery
import sys

_PATCHES = {FAST_LOOPS!r}
_WRAPPED = {RETRY_DECIDED!r}


def _until_retry_decided(complete):
    def backfill_runs_are_complete(backfill_id, instance, logger):
        if not complete(backfill_id, instance, logger):
            return False
        if not instance.run_retries_enabled:
            return True
        from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
        from dagster._core.storage.tags import BACKFILL_ID_TAG, WILL_RETRY_TAG

        failed = instance.get_runs(
            filters=RunsFilter(
                tags={{BACKFILL_ID_TAG: backfill_id}}, statuses=[DagsterRunStatus.FAILURE]
            )
        )
        undecided = [run.run_id for run in failed if WILL_RETRY_TAG not in run.tags]
        if undecided:
            logger.info(f"Runs failed, their retry not yet decided: {{undecided}}")
        return not undecided

    return backfill_runs_are_complete


class _FastDaemonLoops:
    def find_spec(self, name, path=None, target=None):
        if name not in _PATCHES and name not in _WRAPPED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for attribute, value in _PATCHES.get(name, {{}}).items():
                if hasattr(module, attribute):
                    setattr(module, attribute, value)
            wrapped = _WRAPPED.get(name)
            if wrapped is not None and hasattr(module, wrapped):
                setattr(module, wrapped, _until_retry_decided(getattr(module, wrapped)))

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _FastDaemonLoops())
"""


@functools.cache
def fast_daemon_path() -> Path:
    """A folder holding the sitecustomize.py that shortens the daemon loops (FAST_LOOPS), for
    PYTHONPATH; removed when this process exits."""
    folder = Path(tempfile.mkdtemp(prefix="miniscope-fast-daemon-"))
    folder.chmod(0o755)  # SLURM jobs and `nobody` read it too
    atexit.register(shutil.rmtree, folder, True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return folder


def fast_instance(config: dict[str, Any]) -> dict[str, Any]:
    """A dagster.yaml's `config` with the test instance's run queue interval (FAST_RUN_QUEUE)."""
    return {**config, "run_coordinator": FAST_RUN_QUEUE}


def dagster_home(folder: Path, **limits: int) -> Path:
    """`folder` with deploy/dagster.yaml in it, the run and pool limits replaced by `limits`
    (max_concurrent_runs, default_limit) where given, and the run queue looked at every second."""
    import yaml

    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    concurrency = config["concurrency"]
    if "max_concurrent_runs" in limits:
        concurrency["runs"]["max_concurrent_runs"] = limits["max_concurrent_runs"]
    if "default_limit" in limits:
        concurrency["pools"]["default_limit"] = limits["default_limit"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(fast_instance(config)))
    return folder


def environment(**variables: str) -> dict[str, str]:
    """This process's environment with this venv's tools first on PATH, the daemons' loops
    shortened (FAST_LOOPS) and `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINISCOPE_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    path = [str(PROJECT), str(fast_daemon_path()), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    env.update(variables)
    return env


def start_head(stack: ExitStack, logs: Path, env: dict[str, str]) -> tuple[str, Service]:
    """deploy/start-head.sh (daemon and webserver) on a free port, on its default address; the
    webserver's URL."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    service = start(stack, "head", ["bash", str(DEPLOY / "start-head.sh")], logs, env=env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert service.alive(), f"the head stopped:\n{service.tail()}"
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        return False

    wait_for(up, 120, "the Dagster webserver")
    return url, service


def start_worker(
    stack: ExitStack, logs: Path, env: dict[str, str], name: str, env_file: Path | None = None
) -> Service:
    """deploy/start-worker.sh with one slot, named `name`; with `env_file`, the settings only
    from that file (ENV_FILE), as a lab's workers read them."""
    command = ["bash", str(DEPLOY / "start-worker.sh"), "1", name]
    env = env if env_file is None else from_env_file(env, env_file)
    return start(stack, f"worker-{name}", command, logs, env=env)


def from_env_file(env: dict[str, str], path: Path) -> dict[str, str]:
    """`env` with its MINISCOPE_* and DAGSTER_* variables moved into the file `path` (mode 600,
    as deploy/env.example says), which ENV_FILE names."""
    own = {k: v for k, v in env.items() if k.startswith(("MINISCOPE_", "DAGSTER_"))}
    path.write_text("".join(f"{k}={v}\n" for k, v in own.items()))
    path.chmod(0o600)
    return {**{k: v for k, v in env.items() if k not in own}, "ENV_FILE": str(path)}


def worker_ready(service: Service) -> bool:
    """The Celery worker says it is ready (its log shows `ready.`)."""
    assert service.alive(), f"{service.name} stopped:\n{service.tail()}"
    return " ready." in service.log.read_text(errors="replace")
