"""headOrientation.csv: BNO055 quaternions (w, x, y, z), one row per frame time.

`0,0,0,0` rows mean "no sample" (sensor disabled or not ready); from DAQ v2.0 bad rows are
omitted instead, so samples are joined to frames by their own time column, never by row number.

Head orientation must never cost the imaging: a damaged row is skipped and counted, and a file
that cannot be read at all is left out, each with one `MiniscopeWarning` naming the file.
A row is a sample when its five fields (time, qw, qx, qy, qz) are finite numbers, the time a
whole number of ms, and the quaternion's norm within `NORM_TOLERANCE` of 1 (real BNO055 samples:
0.99-1.013); an all-zero quaternion is "no sample"; every other row is damaged (garbage such as
`332,4.23726e+35,3.45249e-32,6.88962e-41,nan`, too few or many fields, a last line the DAQ never
finished).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MiniscopeWarning

NORM_TOLERANCE = 0.1
FIRST_DAMAGED = 5  # row numbers named in the warning


@dataclass(frozen=True, eq=False)  # arrays: compare fields, not objects
class HeadOrientation:
    """The samples of one headOrientation.csv, and what the rest of its rows were."""

    path: Path
    time_ms: np.ndarray  # float64 (N,): ms, fractions kept as in timeStamps.csv
    quaternions: np.ndarray  # float64 (N, 4)
    rows: int = 0  # data rows (lines after the header, blank lines not counted)
    missing: int = 0  # 0,0,0,0 rows: "no sample"
    damaged: int = 0  # skipped: not a sample and not "no sample"
    first_damaged: tuple[int, ...] = ()  # file line numbers (1 = the header) of the first few
    problem: str | None = field(default=None)  # why the file could not be read at all

    @property
    def samples(self) -> int:
        return len(self.time_ms)

    def summary(self) -> str:
        """`kept 10 samples of 14 rows; 2 empty (0,0,0,0: no sample); 2 damaged (skipped)`."""
        if self.problem is not None:
            return f"not read: {self.problem}"
        return (
            f"kept {self.samples} sample{'s' if self.samples != 1 else ''} of {self.rows} "
            f"row{'s' if self.rows != 1 else ''}; {self.missing} empty (0,0,0,0: no sample); "
            f"{self.damaged} damaged (skipped)"
        )


def _empty(path: Path, problem: str | None = None) -> HeadOrientation:
    return HeadOrientation(path, np.zeros(0), np.zeros((0, 4)), problem=problem)


def read_orientation(path: Path) -> HeadOrientation:
    """Every sample of `path` with the counts of empty and damaged rows; warns (once) when rows
    were damaged or the file could not be read.

    Accepts both headers, `Time Stamp (ms),qw,qx,qy,qz` and the v0.11-v0.13 `qw,qx,qy,qz` whose
    rows still carry the time first; a first line that starts with a number is a row. A file of
    0 bytes or a header only holds zero samples.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        return _unreadable(path, f"cannot be read ({error.strerror or error})")
    if b"\x00" in data:
        return _unreadable(path, "is not text (it holds NUL bytes)")
    parsed = _parse(path, data.decode("utf-8", errors="replace"))
    if parsed.damaged:
        lines = ", ".join(str(n) for n in parsed.first_damaged)
        more = ", ..." if parsed.damaged > len(parsed.first_damaged) else ""
        warnings.warn(
            f"{path}: {parsed.damaged} of {parsed.rows} rows damaged (not five finite numbers "
            f"time,qw,qx,qy,qz with a quaternion norm within {NORM_TOLERANCE} of 1), skipped; "
            f"line{'s' if parsed.damaged > 1 else ''} {lines}{more}",
            MiniscopeWarning,
            stacklevel=2,
        )
    return parsed


def read_head_orientation(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(time_ms float64 (N,), quaternions float64 (N, 4)): the samples of `read_orientation`."""
    orientation = read_orientation(path)
    return orientation.time_ms, orientation.quaternions


def _unreadable(path: Path, problem: str) -> HeadOrientation:
    warnings.warn(f"{path}: {problem}; head orientation left out", MiniscopeWarning, stacklevel=3)
    return _empty(path, problem)


def _parse(path: Path, text: str) -> HeadOrientation:
    lines = text.split("\n")
    finished = len(lines) - 1  # lines before the last "\n"; the rest was never finished
    if lines[-1] == "":
        lines.pop()
    times: list[float] = []
    values: list[tuple[float, float, float, float]] = []
    rows = missing = damaged = 0
    first: list[int] = []
    for index, line in enumerate(lines):
        line = line.rstrip("\r")
        if index == 0:
            line = line.lstrip("\ufeff")
            if not _starts_with_number(line):
                continue  # the header
        if not line.strip():
            continue
        rows += 1
        row = _row(line) if index < finished else None
        if row is None:
            damaged += 1
            if len(first) < FIRST_DAMAGED:
                first.append(index + 1)
        elif row[1] == (0.0, 0.0, 0.0, 0.0):
            missing += 1
        else:
            times.append(row[0])
            values.append(row[1])
    return HeadOrientation(
        path=path,
        time_ms=np.array(times, dtype=np.float64),
        quaternions=np.array(values, dtype=np.float64).reshape(-1, 4),
        rows=rows,
        missing=missing,
        damaged=damaged,
        first_damaged=tuple(first),
    )


def _starts_with_number(line: str) -> bool:
    try:
        float(line.split(",", 1)[0])
    except ValueError:
        return False
    return True


def _row(line: str) -> tuple[float, tuple[float, float, float, float]] | None:
    """(time, quaternion) of a sample or of an all-zero row; None for a damaged row."""
    fields = line.split(",")
    if len(fields) != 5 or "_" in line:  # float() would read "1_0" as 10
        return None
    try:
        time, w, x, y, z = (float(part) for part in fields)
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (time, w, x, y, z)):
        return None
    quaternion = (w, x, y, z)
    if quaternion == (0.0, 0.0, 0.0, 0.0):
        return time, quaternion
    if abs(math.hypot(w, x, y, z) - 1.0) > NORM_TOLERANCE:
        return None
    return time, quaternion
