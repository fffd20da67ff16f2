"""Safe outputs: a finished file appears whole or not at all, never over someone else's work.

`atomic_output` is the one way an output is written. The body writes a hidden, per-process
temporary file (or directory: an NWB Zarr store) next to the output; only when it completes is
it renamed into place, so a reader (or the Dagster UI, or a sensor) never sees a half-written
output. Around that it:

- refuses to replace an existing output unless asked to (checked at entry and again at the
  rename, which then cannot replace a file that appeared meanwhile);
- holds an exclusive lock (`fcntl.flock` on a hidden `.NAME.lock` next to the output, holding
  the writer's PID and start time) so two conversions of one output cannot run at once: the
  second is told who is writing, the first completes untouched;
- removes temporary files left behind by killed runs, so they do not fill the disk;
- checks the free space before a long write, and turns "no space left on device" (however
  h5py words it) into one line that says where and how much;
- says in one line when the output cannot be written at all (a file where a folder should be,
  no permission, a read-only disk, a folder where the file should be).

Where an output may go at all (never inside a recording being read) is `output_guard`'s.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MiniscopeFormatError

try:
    import fcntl
except ImportError:  # Windows: no flock; outputs are still atomic and never clobbered
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

MAX_MARGIN = 64 * 1000**2
"""Free space asked for beyond `expected_bytes`: 5 % of it, at most this (HDF5 metadata, ...)."""

_FULL_ERRNOS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded"}


class OutputError(MiniscopeFormatError):
    """An output cannot be written; the message (one line) names it and what to do."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle without calling `__init__`, so the error crosses process boundaries whole."""
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[OutputError], args: tuple[Any, ...], state: dict[str, Any]) -> OutputError:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class OutputExistsError(OutputError):
    """The output already exists and replacing it was not asked for."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, "exists; pass --overwrite to replace it")


class OutputBusyError(OutputError):
    """Another process is writing the same output right now."""

    def __init__(self, path: Path | str, pid: int | None, since: float | None, host: str) -> None:
        self.pid = pid
        self.since = since
        who = f"process {pid}" if pid else "another process"
        if host and host != socket.gethostname():
            who += f" on {host}"
        if since:
            who += f" (since {_clock(since)})"
        super().__init__(path, f"is being written by {who}; wait for it or choose another output")


class NoSpaceError(OutputError):
    """Not enough free space for the output, found before writing or while writing."""

    def __init__(self, path: Path | str, problem: str, needed: int, free: int | None) -> None:
        self.needed = needed
        self.free = free
        super().__init__(path, problem)


@contextmanager
def atomic_output(
    path: Path, *, overwrite: bool = False, expected_bytes: int = 0
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `path`, on any error it vanishes.

    `expected_bytes` (an estimate of the output's size) lets a long write be refused at once
    rather than failing hours later on a full disk. Raises `OutputExistsError`,
    `OutputBusyError`, `NoSpaceError` or, for a place that cannot be written, `OutputError`.
    """
    path = Path(path)
    _refuse_folder(path)
    writable_folder(path.parent, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable(path, error) from error
    _refuse_existing(path, overwrite)
    temporary = temporary_path(path)
    try:
        with _output_lock(path) as locked:
            _refuse_existing(path, overwrite)  # a writer may have finished meanwhile
            remove_stale(path, locked=locked)
            _check_space(path, expected_bytes)
            try:
                yield temporary
                _commit(temporary, path, overwrite)
            finally:
                _discard(temporary)
    except Exception as error:  # hdmf wraps h5py's errors in a plain Exception
        if (full := _no_space(path, expected_bytes, error)) is None:
            raise
        raise full from error


def writable_folder(folder: Path, output: Path | None = None) -> None:
    """Raise a one-line `OutputError` (naming `output`, else `folder`) unless files can be
    created in `folder`, which may not exist yet: its nearest existing ancestor must be a
    folder one may write in. Nothing is created."""
    named = Path(output) if output is not None else Path(folder)
    existing = Path(os.path.abspath(folder))
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(named, f"cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(named, f"cannot be written: {_no_write(existing)}; choose another place")


def unwritable(path: Path, error: OSError) -> OutputError:
    """The one-line error for an OSError met while creating `path` or a folder for it."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        file = next((p for p in Path(path).parents if p.is_file()), None)
        if file is not None:
            return OutputError(path, f"cannot be written: {file} is a file, not a folder")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        folder = Path(error.filename).parent if error.filename else Path(path).parent
        return OutputError(path, f"cannot be written: {_no_write(folder)}; choose another place")
    reason = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    return OutputError(path, f"cannot be written: {reason}{where}")


def _no_write(folder: Path) -> str:
    """`no permission to write in /x`, or `/mnt is mounted read only`."""
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{_mount_point(folder)} is mounted read only"
    return f"no permission to write in {folder}"


def temporary_path(path: Path) -> Path:
    """`.NAME.PID.partial` next to `path`: hidden (sensors and globs skip it), one per writer."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def lock_path(path: Path) -> Path:
    """`.NAME.lock` next to `path`; it exists only while a writer holds it (or one was killed)."""
    return path.with_name(f".{path.name}.lock")


def remove_stale(path: Path, *, locked: bool) -> list[Path]:
    """Remove temporary files of `path` left by killed runs; returns those removed.

    Holding the lock means nobody else is writing `path`, so every temporary file is stale,
    including the `NAME.partial` of earlier versions, and so is an output a killed run had moved
    aside to replace it (`.NAME.PID.replaced`, replacing was asked for). Without a lock (no flock
    on this system) only those whose writer's PID is gone are removed.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.(partial|replaced)")
    removed = []
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and (locked or not _alive(int(match.group(1)))):
            removed.append(candidate)
    old_style = path.with_name(path.name + ".partial")
    if locked and old_style.exists():
        removed.append(old_style)
    for stale in removed:
        _discard(stale)
    return removed


def write_bytes(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write `data` to `path` atomically (Dagster owns its outputs, so replacing is the default)."""
    with atomic_output(path, overwrite=overwrite, expected_bytes=len(data)) as temporary:
        temporary.write_bytes(data)
    return path


def write_json(path: Path, value: Any, *, overwrite: bool = True) -> Path:
    """Write `value` as indented JSON (anything not JSON-native as its str) atomically."""
    data = json.dumps(value, indent=2, default=str).encode()
    return write_bytes(path, data, overwrite=overwrite)


def write_csv(path: Path, table: pd.DataFrame, *, overwrite: bool = True) -> Path:
    """Write `table` as CSV without its index, atomically."""
    return write_bytes(path, table.to_csv(index=False).encode(), overwrite=overwrite)


def human_size(n_bytes: float) -> str:
    """`1.2 GB`, `300 MB`, `512 bytes`: decimal units, as `df -H` and file managers show them."""
    if n_bytes < 1000:
        return f"{int(n_bytes)} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n_bytes /= 1000
        if n_bytes < 999.5 or unit == "PB":
            return f"{n_bytes:.1f} {unit}" if n_bytes < 9.95 else f"{n_bytes:.0f} {unit}"
    raise AssertionError("unreachable")


def _refuse_folder(path: Path) -> None:
    """A file output named like an existing folder (`-o out` meant as a folder) is refused
    before anything is written, with or without --overwrite (a Zarr store is a folder)."""
    if path.is_dir() and not path.is_symlink() and not path.name.endswith(".zarr"):
        raise OutputError(path, "is a folder: name the file to write (FOLDER/NAME.nwb)")


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)


def _discard(temporary: Path) -> None:
    """Remove a temporary file or directory, if it is there."""
    if temporary.is_dir() and not temporary.is_symlink():
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        temporary.unlink(missing_ok=True)


def _commit(temporary: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished file into place; without `overwrite`, never over a file.

    A hard link fails if `path` exists (no window between check and rename); file systems
    without hard links (FAT, some network shares) fall back to check-then-rename, which the
    lock still protects against other conversions.
    """
    if temporary.is_dir():
        _commit_directory(temporary, path, overwrite)
        return
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError as error:
        if _disk_full(error) is not None:
            raise
        _refuse_existing(path, overwrite)
        os.replace(temporary, path)
    else:
        temporary.unlink()


def _commit_directory(temporary: Path, path: Path, overwrite: bool) -> None:
    """Rename a finished directory into place; without `overwrite`, never over anything.

    Directories have no hard links: the name is checked under the lock, and rename(2) itself
    fails over a file or a non-empty directory, so nobody's data can be replaced. With
    `overwrite` the old output is renamed aside first and removed once the new one has its name
    (a reader sees the old one or the new one, or for an instant neither, never a mix).
    """
    if not os.path.lexists(path):
        try:
            os.rename(temporary, path)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputExistsError(path) from None
            raise
        return
    if not overwrite:
        raise OutputExistsError(path)
    aside = path.with_name(f".{path.name}.{os.getpid()}.replaced")
    os.rename(path, aside)
    try:
        os.rename(temporary, path)
    except BaseException:
        os.rename(aside, path)
        raise
    _discard(aside)


@contextmanager
def _output_lock(path: Path) -> Iterator[bool]:
    """Hold the exclusive lock of `path` (yields False where flock is not available).

    The lock file is removed on release while still locked. Another process may have opened
    it just before and then lock the unlinked file; so after locking, each process checks that
    the file it locked is still the one at the lock path, and starts over if not.
    """
    if fcntl is None:
        yield False
        return
    lock = lock_path(path)
    fd = _acquire(path, lock)
    if fd is None:  # flock not supported on this file system
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            if _same_file(fd, lock):
                lock.unlink()
        os.close(fd)  # releases the lock


def _acquire(path: Path, lock: Path) -> int | None:
    """Return an fd holding the lock, None if flock is unsupported; raise if another holds it."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise unwritable(path, error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputBusyError(path, *holder) from None
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                with contextlib.suppress(OSError):
                    lock.unlink()
                return None
            raise
        if _same_file(fd, lock):
            break
        os.close(fd)  # locked a file its last holder had just removed: start over
    try:
        record = f"{os.getpid()} {time.time():.0f} {socket.gethostname()}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        raise
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not unlinked nor replaced)."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


def _read_holder(fd: int) -> tuple[int | None, float | None, str]:
    """(PID, start time, host) the lock holder wrote; Nones if it has not written them yet."""
    try:
        fields = os.pread(fd, 512, 0).decode(errors="replace").split()
        return int(fields[0]), float(fields[1]), fields[2] if len(fields) > 2 else ""
    except (OSError, ValueError, IndexError):
        return None, None, ""


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: leave its file alone
    return True


def _check_space(path: Path, expected_bytes: int) -> None:
    if expected_bytes <= 0:
        return
    free = _free_bytes(path.parent)
    needed = _with_margin(expected_bytes)
    if free is not None and free < needed:
        where = _mount_point(path.parent)
        raise NoSpaceError(
            path,
            f"not enough space: needs about {human_size(needed)}, {human_size(free)} free"
            f" on {where}",
            needed,
            free,
        )


def _no_space(path: Path, expected_bytes: int, error: BaseException) -> NoSpaceError | None:
    """The one-line error for a disk that filled up while writing, None for any other error."""
    if (problem := _disk_full(error)) is None:
        return None
    free = _free_bytes(path.parent)
    shown = human_size(free) if free is not None else "?"
    return NoSpaceError(
        path,
        f"{problem} on {_mount_point(path.parent)} while writing"
        f" ({_needs(expected_bytes)}{shown} free)",
        _with_margin(expected_bytes),
        free,
    )


def _with_margin(expected_bytes: int) -> int:
    return expected_bytes + min(expected_bytes // 20, MAX_MARGIN)


def _needs(expected_bytes: int) -> str:
    return f"needs about {human_size(_with_margin(expected_bytes))}, " if expected_bytes > 0 else ""


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mount_point(folder: Path) -> str:
    """The mount point holding `folder` (`/data`), how users know their disks."""
    current = folder.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def _disk_full(error: BaseException) -> str | None:
    """ "no space left" / "disk quota exceeded" if `error` (or what it wraps) says so, else None.

    h5py reports a full disk as an OSError or RuntimeError whose text carries
    "errno = 28, error message = 'No space left on device'", and hdmf may wrap that again.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return _FULL_ERRNOS[current.errno]
        if isinstance(current, OSError | RuntimeError):
            text = str(current)
            for number, problem in _FULL_ERRNOS.items():
                if re.search(rf"errno = {number}\b", text) or os.strerror(number) in text:
                    return problem
        current = current.__cause__ or current.__context__
    return None


def _clock(timestamp: float) -> str:
    """`10:02:11` today, `2024-05-03 10:02:11` on another day."""
    moment = datetime.fromtimestamp(timestamp)
    same_day = moment.date() == datetime.now().date()
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
