"""A single-node SLURM on 127.0.0.1 for tests: munged, slurmctld and slurmd in a temporary folder.

Debian's slurm-wlm and munge, run as root (slurmd must be root to start jobs as the submitting
user): a fresh munge key, `munged` as the munge user, and both SLURM daemons in the foreground with
a slurm.conf whose state, spool, logs and munge socket all live in the folder. `proctrack/linuxproc`
and `task/none` need no cgroups, so it works in a container. The clients (sbatch, squeue, scancel)
find this cluster through SLURM_CONF, which `env()` adds. The daemons are `cluster_services`
services, stopped by PID; the jobs are cancelled first (they outlive slurmd otherwise).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster_services import free_port, start, wait_for

NODE = "miniscope-node1"
PARTITION = "debug"
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def needs() -> str | None:
    """What this machine lacks to run the test cluster, or None when it has everything."""
    if os.geteuid() != 0:
        return "root (slurmd starts jobs as their user)"
    absent = [name for name in COMMANDS if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} (apt-get install slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "the munge user (apt-get install munge)"
    return None


@dataclass
class SlurmCluster:
    """A running one-node cluster; `env()` is what its clients need."""

    root: Path
    conf: Path
    cpus: int

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

    def logs(self) -> str:
        """The end of both daemons' logs, for a failure message."""
        parts = []
        for name in ("slurmctld", "slurmd"):
            path = self.root / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name}.log\n{text[-2000:]}")
        return "\n".join(parts)


def _slurm_conf(root: Path, cpus: int) -> str:
    return f"""\
ClusterName=miniscope
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
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
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def _munge_folder(root: Path) -> Path:
    """A folder of the munge user holding a fresh 1 KiB key (mode 0400)."""
    munge = pwd.getpwnam("munge")
    folder = root / "munge"
    folder.mkdir(mode=0o700)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    for path in (folder, key):
        os.chown(path, munge.pw_uid, munge.pw_gid)
    return folder


def _cancel_jobs(cluster: SlurmCluster, seconds: float = 60) -> None:
    """Cancel every job and wait (bounded) until they are gone, their processes with them."""
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        cluster.run("scancel", f"--partition={PARTITION}")
        deadline = time.monotonic() + seconds
        while cluster.run("squeue", "-h", "-o", "%i").strip() and time.monotonic() < deadline:
            time.sleep(0.5)


def _node_up(cluster: SlurmCluster) -> bool:
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        state = cluster.run("sinfo", "-h", "-n", NODE, "-o", "%t", timeout=10).strip()
        return state in ("idle", "mix", "alloc")
    return False


def _waited(
    condition: Callable[[], object], seconds: float, what: str, cluster: SlurmCluster
) -> None:
    """wait_for, with the end of the daemons' logs in the message when it times out."""
    try:
        wait_for(condition, seconds, what, every=0.3)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.logs()}") from None


@contextmanager
def slurm_cluster(cpus: int | None = None) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd in a new folder under /tmp, the node up on entry; jobs
    cancelled, daemons stopped and the folder removed on exit.

    Not under pytest's tmp_path: the munge user must reach its socket (pytest's folders are
    root's alone) and a socket path may not exceed 107 bytes."""
    cpus = cpus or os.cpu_count() or 1
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="slurm-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        for folder in ("state", "spool", "out"):
            (root / folder).mkdir()
        munge = _munge_folder(root)
        cluster = SlurmCluster(root=root, conf=root / "slurm.conf", cpus=cpus)
        cluster.conf.write_text(_slurm_conf(root, cpus))
        env = cluster.env()
        munged = ["munged", "--foreground", "--force", f"--key-file={munge}/munge.key"]
        munged += [f"--socket={munge}/munge.socket", f"--pid-file={munge}/munged.pid"]
        munged += [f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"]
        start(stack, "munged", munged, root / "out", env=env, user="munge")
        _waited((munge / "munge.socket").exists, 20, "the munge socket", cluster)
        conf = ["-f", str(cluster.conf)]
        start(stack, "slurmctld", ["slurmctld", "-D", *conf], root / "out", env=env)
        start(stack, "slurmd", ["slurmd", "-D", "-N", NODE, *conf], root / "out", env=env)
        _waited(lambda: _node_up(cluster), 60, "the SLURM node", cluster)
        stack.callback(_cancel_jobs, cluster)  # before the daemons stop: jobs outlive slurmd
        yield cluster
