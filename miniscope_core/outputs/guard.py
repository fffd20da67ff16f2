"""Nothing the tool writes lands inside a recording it reads, and `--overwrite` never reaches one.

What a conversion reads: the folder it was given (a session, or a collection of sessions) and,
for each session, its root, its acquisition and device folders and every input file (videos,
timeStamps.csv, headOrientation.csv, notes, metaData.json, the metadata files named); a session
of explicit files (`session_from_files`), its configuration file's folder and every file. What it
writes: the output (a file, or a Zarr directory), the hidden temporary file and `.NAME.lock`
next to it, chunk files in a work folder, an `--output-dir` or dandiset folder (Dagster's DANDI
claim files lie in its output root, which the settings keep out of the raw root). Each written
path is compared with each read one by its REAL path (`Path.resolve()`), so an output reached
through a symbolic link into a session, or a session whose acquisition is a link to another
disk, is caught as well. `refuse_writes_inside` is the one check; it runs before any frame is
decoded and raises `OutputInsideInputError`, one line naming the output and the recording.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..collection.discovery import ListedSession
from ..daq.model import Session
from .atomic import OutputError

_ADVICE = "write outside the recording"


class OutputInsideInputError(OutputError):
    """Something would be written inside (or over) a folder or file the conversion reads."""


@dataclass(frozen=True)
class _Read:
    """One folder or file the conversion reads: as named, its real path, and whose it is."""

    shown: Path
    real: Path
    folder: bool
    owner: str  # "the session /s", "the input folder /c"
    top: Path | None  # what to stay out of: the session root, or the input folder


def _real(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def absolute(path: Path | str) -> Path:
    """`path` absolute as the user named it: links kept, `.` and `..` gone (the working
    folder is its real path, so a leading `..` is its real parent). A session given as `.`
    is then named as its folder is, not "" (`Path(".").name`)."""
    return Path(os.path.abspath(Path(path).expanduser()))


_as_named = absolute


def every_video(session: Session) -> list[Path]:
    """The videos of every device of every acquisition, in session order."""
    return [
        video
        for acquisition in session.acquisitions
        for device in acquisition.devices
        for video in device.videos
    ]


def _session_reads(session: Session) -> Iterator[_Read]:
    """The session root, every acquisition and device folder and every input file, each where
    it really is (an acquisition may be a link to another disk).

    A session of explicit files (`session_from_files`) has its configuration file's folder as
    root, acquisition and device folder; its videos may lie anywhere, even among other files:
    each of them is protected (never replaced, never inside an output), not its whole folder,
    into which a file of another name cannot reach them.
    """
    root = _as_named(session.root)
    owner = f"the session {root}"
    folders: list[Path] = [session.root]
    files: list[Path] = []
    for acquisition in session.acquisitions:
        folders.append(acquisition.folder)
        files += [acquisition.folder / "metaData.json"]
        files += [acquisition.notes_path] if acquisition.notes_path else []
        for device in acquisition.devices:
            folders.append(device.folder)
            files += [device.folder / "metaData.json", *device.videos]
            above = device.folder.parent / "metaData.json"  # what an explicit session's start
            files += [above] if above.is_file() else []  # time is read from, by default
            files += [p for p in (device.timestamps_path, device.head_orientation_path) if p]
    for folder in dict.fromkeys(folders):
        yield _Read(_as_named(folder), _real(folder), True, owner, root)
    for file in dict.fromkeys(files):
        yield _Read(_as_named(file), _real(file), False, owner, root)


def _listed_reads(listed: ListedSession) -> Iterator[_Read]:
    """A session as a listing found it: its folder and its acquisition folders."""
    root = _as_named(listed.folder)
    for folder in dict.fromkeys([listed.folder, *listed.acquisitions]):
        yield _Read(_as_named(folder), _real(folder), True, f"the session {root}", root)


Source = Session | ListedSession | Path | str | None


def read_paths(sources: Iterable[Source]) -> list[_Read]:
    """What the conversion reads: sessions (see `_session_reads`), sessions as listed, folders
    given as input (the collection or session named on the command line) and files (metadata
    files), in that order of importance (the first that holds an output names it)."""
    reads: list[_Read] = []
    given: list[_Read] = []
    for source in sources:
        if source is None:
            continue
        if isinstance(source, Session):
            reads += _session_reads(source)
        elif isinstance(source, ListedSession):
            reads += _listed_reads(source)
        elif (real := _real(Path(source))).is_file():  # a metadata file: only itself is read
            shown = _as_named(Path(source))
            given.append(_Read(shown, real, False, f"the input {shown}", None))
        else:
            shown = _as_named(Path(source))
            given.append(_Read(shown, real, True, f"the input folder {shown}", shown))
    return reads + given


def refuse_writes_inside(
    sources: Iterable[Source],
    *,
    outputs: Iterable[Path | str | None] = (),
    folders: Iterable[Path | str | None] = (),
) -> None:
    """Raise `OutputInsideInputError` if anything would be written inside what `sources` read.

    `outputs` are files (or Zarr directories) written and, with --overwrite, replaced: each may
    be neither an input file, nor inside an input folder (its temporary file and lock lie
    beside it, so they are inside whenever it is), nor an ancestor of an input. `folders` are
    folders written into (--output-dir, --work-dir, a dandiset): each may not be inside an
    input folder; holding a session is fine (`--output-dir .` above the recordings).
    """
    reads = read_paths(sources)
    for folder in folders:  # first: a work folder inside is named, not its first chunk file
        if folder is not None:
            _check(Path(folder), reads, replaced=False)
    for output in outputs:
        if output is not None:
            _check(Path(output), reads, replaced=True)


def _check(path: Path, reads: list[_Read], *, replaced: bool) -> None:
    named = _as_named(path)  # `..` gone first: `--output-dir ..` is the parent, not inside
    # The real path of what is written: through links in its folder; an output that is itself
    # a link is replaced as a link, but one that points into a recording is refused as well.
    for real in dict.fromkeys([_real(named.parent) / named.name, _real(named)]):
        for read in reads:
            if not read.folder and real == read.real:
                raise OutputInsideInputError(named, _is_file(read, named, replaced))
        for read in reads:
            if read.folder and real.is_relative_to(read.real):
                raise OutputInsideInputError(named, _inside(read, real))
        for read in reads if replaced else ():
            if read.real.is_relative_to(real):
                raise OutputInsideInputError(named, _holds(read))


def _where(read: _Read) -> str:
    """The path as named, and its real path when a link leads elsewhere."""
    return f"{read.shown} (really {read.real})" if read.real != read.shown else str(read.shown)


def _not_under(read: _Read) -> str:
    """`write outside the recording, not under /s` (`nor /disk/acq` for a link's target)."""
    if read.top is None:
        return f"{_ADVICE}: choose another name"
    elsewhere = not read.real.is_relative_to(_real(read.top))
    return f"{_ADVICE}, not under {read.top}" + (f" nor {read.real}" if elsewhere else "")


def _inside(read: _Read, real: Path) -> str:
    verb = "is" if real == read.real else "is inside"
    if read.shown == read.top:
        really = f" (really {read.real})" if read.real != read.shown else ""
        what = f"{read.owner}{really}"
    else:
        what = f"{_where(read)} of {read.owner}"
    return f"{verb} {what}, which the conversion reads: {_not_under(read)}"


def _is_file(read: _Read, named: Path, replaced: bool) -> str:
    never = " (--overwrite never replaces an input)" if replaced else ""
    which = "" if read.shown == named else f"{_where(read)}, "
    whose = f"a file of {read.owner}" if read.top is not None else "a file the conversion reads"
    return f"is {which}{whose}{never}: {_not_under(read)}"


def _holds(read: _Read) -> str:
    what = read.owner if read.shown == read.top else f"{_where(read)} of {read.owner}"
    return (
        f"holds {what}, which the conversion reads (--overwrite would replace it): {_ADVICE}: "
        "name a new file, not a folder above the recording"
    )
