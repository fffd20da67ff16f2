"""A single-node SLURM on 127.0.0.1 for tests: munged, slurmctld and slurmd in a temporary folder.

Debian's slurm-wlm and munge, run as root (slurmd must be root to start jobs as the submitting
user): a fresh munge key, `munged` as the munge user, and both SLURM daemons in the foreground with
a slurm.conf whose state, spool, logs and munge socket all live in the folder. `proctrack/linuxproc`
and `task/none` need no cgroups, so it works in a container. The clients (sbatch, squeue, scancel)
find this cluster through SLURM_CONF, which `env()` gives. Every daemon is stopped by its PID.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NODE = "miniscope-node1"
PARTITION = "debug"
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")


def missing() -> str | None:
    """Why this machine cannot run the test cluster, or None when it can."""
    if os.geteuid() != 0:
        return "a SLURM node must be started as root (slurmd runs jobs as their user)"
    absent = [name for name in COMMANDS if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (apt-get install munge)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SlurmCluster:
    """A running one-node cluster; `env()` is what its clients need."""

    root: Path
    conf: Path
    cpus: int
    pids: dict[str, int] = field(default_factory=dict)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        return {**(os.environ if base is None else base), "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, env: dict[str, str] | None = None, timeout: float = 30) -> str:
        """A SLURM client command against this cluster, in `env` (default: ours) with SLURM_CONF;
        its stdout (RuntimeError with its stderr on a non-zero exit)."""
        done = subprocess.run(
            command,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr}")
        return done.stdout

    def job_state(self, job: str) -> str:
        """The job's state as squeue tells it ("" once it has left the queue)."""
        return self.run("squeue", "-h", "-j", job, "-o", "%T").strip()

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _slurm_conf(root: Path, cpus: int, user: str) -> str:
    return f"""\
ClusterName=miniscope
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def _munge_dirs(root: Path) -> Path:
    """A munge folder owned by the munge user holding a fresh 1 KiB key (mode 0400)."""
    munge = pwd.getpwnam("munge")
    folder = root / "munge"
    folder.mkdir(mode=0o700)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    for path in (folder, key):
        os.chown(path, munge.pw_uid, munge.pw_gid)
    return folder


def _start(
    stack: ExitStack, cluster: SlurmCluster, name: str, command: list[str], user: str = "root"
) -> None:
    """Start a daemon in the foreground as `user` (own session), to be stopped by PID on exit."""
    out = (cluster.root / f"{name}.out").open("w")
    account = pwd.getpwnam(user)
    process = subprocess.Popen(
        command,
        env=cluster.env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
    )
    cluster.pids[name] = process.pid
    stack.callback(_stop, process, out)


def _stop(process: subprocess.Popen, out) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    out.close()


def _wait(condition, seconds: float, what: str, cluster: SlurmCluster) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    logs = "\n".join(f"--- {n}\n{cluster.log(n)[-2000:]}" for n in ("slurmctld", "slurmd"))
    raise RuntimeError(f"timed out after {seconds} s waiting for {what}\n{logs}")


def _node_idle(cluster: SlurmCluster) -> bool:
    try:
        state = cluster.run("sinfo", "-h", "-n", NODE, "-o", "%t", timeout=10).strip()
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return state in ("idle", "mix", "alloc")


@contextmanager
def slurm_cluster(cpus: int | None = None) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd in a new folder under /tmp, the node idle on entry; all
    stopped and the folder removed on exit.

    Not under pytest's tmp_path: the munge user must reach its socket (pytest's folders are
    root's alone) and a socket path may not exceed 107 bytes."""
    cpus = cpus or os.cpu_count() or 1
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="slurm-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        for folder in ("state", "spool"):
            (root / folder).mkdir()
        munge = _munge_dirs(root)
        cluster = SlurmCluster(root=root, conf=root / "slurm.conf", cpus=cpus)
        cluster.conf.write_text(_slurm_conf(root, cpus, "root"))
        munged = ["munged", "--foreground", "--force"]
        munged += [f"--key-file={munge}/munge.key", f"--socket={munge}/munge.socket"]
        munged += [f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log"]
        munged += [f"--seed-file={munge}/munged.seed"]
        _start(stack, cluster, "munged", munged, user="munge")
        socket_path = munge / "munge.socket"
        _wait(socket_path.exists, 20, "the munge socket", cluster)
        _start(stack, cluster, "slurmctld", ["slurmctld", "-D", "-f", str(cluster.conf)])
        _start(stack, cluster, "slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(cluster.conf)])
        _wait(lambda: _node_idle(cluster), 60, "the SLURM node to come up", cluster)
        yield cluster
