"""Safe outputs: what a user relies on when a conversion writes, fails, is killed or collides."""

from __future__ import annotations

import errno
import os
import pickle
import re
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
from support import PROJECT

from miniscope_core.outputs import atomic
from miniscope_core.outputs.atomic import (
    NoSpaceError,
    OutputBusyError,
    OutputError,
    OutputExistsError,
    atomic_output,
    lock_path,
    temporary_path,
    write_bytes,
    write_csv,
    write_json,
)

REPO = PROJECT
H5PY_FULL = (
    "Can't write data (file write failed: time = Mon May  6 10:02:11 2024, filename = "
    "'/data/.out.nwb.1234.partial', file descriptor = 5, errno = 28, error message = "
    "'No space left on device', buf = 0x55d0, total write size = 4096, bytes this sub-write = "
    "4096, bytes actually written = 18446744073709551615, offset = 0)"
)
Usage = namedtuple("Usage", "total used free")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_written_under_a_hidden_name_then_renamed(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out.nwb"
    with atomic_output(out) as temporary:
        assert temporary.parent == out.parent and temporary.name.startswith(".")
        assert temporary == temporary_path(out)
        temporary.write_bytes(b"data")
        assert not out.exists()
    assert out.read_bytes() == b"data"
    assert names(out.parent) == ["out.nwb"]  # no temporary, no lock file


def test_existing_output_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError) as caught, atomic_output(out):
        pytest.fail("the body must not run")
    assert str(caught.value) == f"{out}: exists; pass --overwrite to replace it"
    assert isinstance(caught.value, OutputError) and caught.value.path == out
    assert out.read_bytes() == b"precious"
    assert names(tmp_path) == ["out.nwb"]


def test_existing_output_replaced_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    out.write_bytes(b"old")
    with atomic_output(out, overwrite=True) as temporary:
        temporary.write_bytes(b"new")
        assert out.read_bytes() == b"old"  # still whole while the new one is written
    assert out.read_bytes() == b"new"
    assert names(tmp_path) == ["out.nwb"]


def test_output_appearing_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    with pytest.raises(OutputExistsError), atomic_output(out) as temporary:
        temporary.write_bytes(b"mine")
        out.write_bytes(b"theirs")  # e.g. copied in by hand during a long conversion
    assert out.read_bytes() == b"theirs"
    assert names(tmp_path) == ["out.nwb"]


@pytest.mark.parametrize("error", [ValueError("bad frame"), KeyboardInterrupt()])
def test_failed_body_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    out = tmp_path / "out.nwb"
    with pytest.raises(type(error)), atomic_output(out) as temporary:
        temporary.write_bytes(b"half")
        raise error
    assert names(tmp_path) == []


def test_failed_body_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    out.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt), atomic_output(out, overwrite=True) as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert out.read_bytes() == b"previous"
    assert names(tmp_path) == ["out.nwb"]


def test_leftovers_of_killed_runs_removed_on_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    killed = tmp_path / f".out.nwb.{dead_pid()}.partial"
    old_style = tmp_path / "out.nwb.partial"
    stale_lock = lock_path(out)  # the kernel released the lock when its holder died
    other = tmp_path / f".other.nwb.{dead_pid()}.partial"  # another output's: not ours to judge
    for leftover in (killed, old_style, stale_lock, other):
        leftover.write_bytes(b"x" * 100)
    with atomic_output(out) as temporary:
        assert not killed.exists() and not old_style.exists()
        temporary.write_bytes(b"data")
    assert names(tmp_path) == sorted([other.name, "out.nwb"])


def test_without_a_lock_only_dead_writers_leftovers_removed(tmp_path: Path) -> None:
    out = tmp_path / "out.nwb"
    dead = tmp_path / f".out.nwb.{dead_pid()}.partial"
    alive = tmp_path / f".out.nwb.{os.getppid()}.partial"
    old_style = tmp_path / "out.nwb.partial"
    for leftover in (dead, alive, old_style):
        leftover.touch()
    assert atomic.remove_stale(out, locked=False) == [dead]
    assert names(tmp_path) == sorted([alive.name, old_style.name])


HOLDER = """
import sys, time
from pathlib import Path
from miniscope_core import atomic_output

out, ready, go = map(Path, sys.argv[1:])
with atomic_output(out) as temporary:
    temporary.write_bytes(b"first writer")
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def test_second_writer_of_the_same_output_refused_first_completes(tmp_path: Path) -> None:
    out, ready, go = tmp_path / "out" / "out.nwb", tmp_path / "ready", tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    first = subprocess.Popen([sys.executable, "-c", HOLDER, out, ready, go], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, "first writer died"
            time.sleep(0.02)
        with pytest.raises(OutputBusyError) as caught, atomic_output(out, overwrite=True):
            pytest.fail("the body must not run")
        assert caught.value.pid == first.pid
        assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)  # via a pool
        assert re.fullmatch(
            rf"{re.escape(str(out))}: is being written by process {first.pid} "
            r"\(since \d\d:\d\d:\d\d\); wait for it or choose another output",
            str(caught.value),
        )
        assert temporary_path(out).name not in names(out.parent)  # ours was never created
    finally:
        go.touch()
        assert first.wait(timeout=60) == 0
    assert out.read_bytes() == b"first writer"
    assert names(out.parent) == ["out.nwb"]


def test_lock_removed_by_its_holder_just_before_we_lock_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Having opened the lock file as its holder removed it, we lock a dead file: start over."""
    out = tmp_path / "out.nwb"
    lock = lock_path(out)
    real_flock = atomic.fcntl.flock
    calls = []

    def flock_after_holder_left(fd: int, operation: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            lock.unlink()  # the previous holder finishing between our open() and flock()
        real_flock(fd, operation)

    monkeypatch.setattr(atomic.fcntl, "flock", flock_after_holder_left)
    with atomic_output(out) as temporary:
        monkeypatch.setattr(atomic.fcntl, "flock", real_flock)
        assert len(calls) == 2 and lock.exists()
        with pytest.raises(OutputBusyError, match=f"process {os.getpid()}"), atomic_output(out):
            pass  # the lock now held is the one at the lock path
        temporary.write_bytes(b"data")
    assert names(tmp_path) == ["out.nwb"]


def test_not_enough_space_refused_before_the_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.nwb"
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**12, 0, 300 * 10**6))
    with pytest.raises(NoSpaceError) as caught, atomic_output(out, expected_bytes=1_150_000_000):
        pytest.fail("the body must not run")
    assert re.fullmatch(
        rf"{re.escape(str(out))}: not enough space: needs about 1\.2 GB, 300 MB free on /.*",
        str(caught.value),
    )
    assert caught.value.free == 300 * 10**6 and caught.value.needed >= 1_150_000_000
    assert names(tmp_path) == []


def test_enough_space_goes_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.nwb"
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**12, 0, 2 * 10**9))
    with atomic_output(out, expected_bytes=1_150_000_000) as temporary:
        temporary.write_bytes(b"data")
    assert out.read_bytes() == b"data"


def wrapped_by_hdmf() -> Exception:
    """hdmf re-raises h5py's error as a plain Exception `from` it."""
    try:
        try:
            raise OSError(H5PY_FULL)
        except OSError as exc:
            raise Exception("Could not create dataset data in /acquisition/scope") from exc
    except Exception as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        OSError(H5PY_FULL),
        RuntimeError(H5PY_FULL),
        wrapped_by_hdmf(),
    ],
    ids=["ENOSPC", "h5py-OSError", "h5py-RuntimeError", "hdmf-wrapped"],
)
def test_disk_full_while_writing_gives_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    out = tmp_path / "out.nwb"
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**12, 0, 300 * 10**6))
    with pytest.raises(NoSpaceError) as caught, atomic_output(out, expected_bytes=10**8) as tmp:
        tmp.write_bytes(b"half")
        raise error
    assert re.fullmatch(
        rf"{re.escape(str(out))}: no space left on /\S* while writing "
        r"\(needs about 105 MB, 300 MB free\)",
        str(caught.value),
    )
    assert caught.value.__cause__ is error
    assert names(tmp_path) == []


def test_disk_full_without_an_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.nwb"
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage(10**12, 0, 4096))
    full = r"no space left on /\S* while writing \(4\.1 kB free\)$"
    with pytest.raises(NoSpaceError, match=full), atomic_output(out) as temporary:
        temporary.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert names(tmp_path) == []


def test_other_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="Permission denied"), atomic_output(tmp_path / "x"):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_dagster_writers_replace_their_outputs(tmp_path: Path) -> None:
    json_out, csv_out, png_out = tmp_path / "a.json", tmp_path / "s" / "b.csv", tmp_path / "c.png"
    for _ in range(2):  # a second materialization replaces the first
        write_json(json_out, {"when": time, "n": 1})
        write_csv(csv_out, pd.DataFrame({"a": [1, 2]}))
        write_bytes(png_out, b"\x89PNG")
    assert '"n": 1' in json_out.read_text() and "<module 'time'" in json_out.read_text()
    assert csv_out.read_text() == "a\n1\n2\n"
    assert png_out.read_bytes() == b"\x89PNG"
    with pytest.raises(OutputExistsError):
        write_bytes(png_out, b"other", overwrite=False)
    assert names(tmp_path) == ["a.json", "c.png", "s"] and names(csv_out.parent) == ["b.csv"]


def test_human_sizes() -> None:
    sizes = [12, 4096, 300 * 10**6, 1_234_000_000, 999_600, 15 * 10**12]
    shown = ["12 bytes", "4.1 kB", "300 MB", "1.2 GB", "1.0 MB", "15 TB"]
    assert [atomic.human_size(n) for n in sizes] == shown
