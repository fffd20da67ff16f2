"""Times on another system's clock: the alignments NeuroConv users know, for a whole session.

Local times are the file's own (seconds since its session start, as an unaligned conversion
writes them). Sync pairs (local, reference), e.g. TTL pulses that the DAQ and another
acquisition system both recorded, map them by linear interpolation, extrapolated past the first
and last pair with the end segments' slopes; a start offset is added last. Every series and
table of the file goes through the same mapping, so devices never move against each other.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MiniscopeFormatError

SYNC_FILE = "sync.csv"  # in a session folder: applied to its conversion unless another is given
SYNC_COLUMNS = ("local_time", "reference_time")


@dataclass(frozen=True)
class TimeAlignment:
    """Sync pairs (strictly increasing on both clocks, at least two) and a start offset (s)."""

    local: tuple[float, ...] = ()
    reference: tuple[float, ...] = ()
    start_offset: float = 0.0
    source: str = ""  # where the pairs came from, recorded in the file

    def __post_init__(self) -> None:
        problem = pair_problem(self.local, self.reference)
        if problem is None and not math.isfinite(self.start_offset):
            problem = f"the start offset {self.start_offset} is not a finite number of seconds"
        if problem is not None:
            raise ValueError(problem)

    def apply(self, seconds: np.ndarray) -> np.ndarray:
        """`seconds` (local) on the reference clock."""
        times = np.asarray(seconds, dtype=np.float64)
        if self.local:
            times = _interpolate(times, np.array(self.local), np.array(self.reference))
        return times + self.start_offset

    def extrapolated(self, seconds: np.ndarray) -> int:
        """How many of `seconds` lie outside the pairs (their aligned times are extrapolated)."""
        if not self.local:
            return 0
        times = np.asarray(seconds)
        return int(np.count_nonzero((times < self.local[0]) | (times > self.local[-1])))

    def describe(self, n_extrapolated: int = 0) -> str:
        """How the file's times were aligned, in a sentence for its notes."""
        parts = []
        if self.local:
            parts.append(
                f"Times aligned to a reference clock by linear interpolation of {len(self.local)} "
                f"(local, reference) sync pairs from {self.source or 'the Python API'}, local "
                f"{self.local[0]:g} to {self.local[-1]:g} s; {n_extrapolated} times outside them "
                "were extrapolated."
            )
        if self.start_offset:
            parts.append(f"{self.start_offset:g} s added to every time (start offset).")
        return " ".join(parts)


def pair_problem(
    local: tuple[float, ...], reference: tuple[float, ...], first: int = 1, word: str = "pair"
) -> str | None:
    """What is wrong with these sync pairs, or None: both strictly increasing, at least two.

    Pairs are counted from `first` and called `word` (a file's line numbers, say).
    """
    if len(local) != len(reference):
        return f"{len(local)} local times but {len(reference)} reference times"
    if not local:
        return None
    if len(local) < 2:
        return "one sync pair cannot give a clock's rate: give at least two"
    for name, times in (("local", local), ("reference", reference)):
        if not all(math.isfinite(t) for t in times):
            return f"a {name} time is not a finite number"
        for row, (before, after) in enumerate(zip(times, times[1:], strict=False), first + 1):
            if after <= before:
                return f"{word} {row}: {name} time {after:g} is not after {before:g}"
    return None


@dataclass(frozen=True)
class NewTimestamps:
    """New times (s) for every kept frame of one device, in order (NeuroConv's "aligned
    timestamps"). The other devices and tables follow, interpolated between that device's
    frames, so nothing moves against it."""

    device: str
    times: tuple[float, ...]

    def alignment(self, local: np.ndarray) -> TimeAlignment:
        """The sync pairs these times make with the device's `local` frame times."""
        if len(local) != len(self.times):
            raise ValueError(
                f"{self.device} has {len(local)} frames but {len(self.times)} new timestamps"
            )
        return TimeAlignment(
            tuple(map(float, local)), self.times, source=f"new timestamps of {self.device}"
        )


def read_sync_file(path: Path) -> TimeAlignment:
    """Sync pairs from a CSV with columns `local_time,reference_time` (seconds)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = tuple(name.strip() for name in reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MiniscopeFormatError(path, f"cannot be read as CSV: {error}") from error
    if not set(SYNC_COLUMNS) <= set(columns):
        raise MiniscopeFormatError(
            path, f"needs the columns {', '.join(SYNC_COLUMNS)} (seconds); it has {list(columns)}"
        )
    pairs = [_pair(path, row, number) for number, row in enumerate(rows, start=2)]
    local = tuple(p[0] for p in pairs)
    reference = tuple(p[1] for p in pairs)
    problem = pair_problem(local, reference, first=2, word="line") if pairs else "has no pairs"
    if problem is not None:
        raise MiniscopeFormatError(path, problem)
    return TimeAlignment(local, reference, source=path.name)


def _pair(path: Path, row: dict[str, str], line: int) -> tuple[float, float]:
    values = {key.strip(): (value or "").strip() for key, value in row.items() if key}
    try:
        return float(values[SYNC_COLUMNS[0]]), float(values[SYNC_COLUMNS[1]])
    except ValueError:
        raise MiniscopeFormatError(
            path, f"line {line}: {values[SYNC_COLUMNS[0]]!r}, {values[SYNC_COLUMNS[1]]!r} "
            "are not both numbers of seconds",
        ) from None  # fmt: skip


def session_alignment(root: Path) -> TimeAlignment | None:
    """The session folder's own sync.csv, if it has one."""
    path = root / SYNC_FILE
    return read_sync_file(path) if path.is_file() else None


def _interpolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise linear through (xp, fp), continued past both ends along the end segments."""
    y = np.interp(x, xp, fp)
    below, above = x < xp[0], x > xp[-1]
    y[below] = fp[0] + (x[below] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    y[above] = fp[-1] + (x[above] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y
