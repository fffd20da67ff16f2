"""timeStamps.csv: per-frame times, the measured frame rate, and dropped frames.

The stored `frameRate` is only what was requested; the DAQ's own timestamps are the truth.
Frame Number is always contiguous, so a dropped frame shows only as a gap in time (or, from
DAQ software v2.0, as a jump in `DAQ Frame Number`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MiniscopeFormatError, MiniscopeWarning

TIME_COLUMN = "Time Stamp (ms)"
_COLUMNS = {
    "Frame Number": "frame",
    TIME_COLUMN: "time_ms",
    "Buffer Index": "buffer",
    "DAQ Frame Number": "daq_frame",
    "Unix Time Stamp (ms)": "unix_ms",
}
# Beyond any recording (about four months): a time this far from the start is a damaged value.
MAX_TIME_MS = 1e10
# An interval this many times the median means at least one frame was lost.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class Gap:
    """Frames missing between row `after_row` and the next one."""

    after_row: int
    start_ms: float
    stop_ms: float
    missing: int


@dataclass(frozen=True)
class Timing:
    """What a lab checks first about a recording's clock."""

    n_frames: int
    duration_s: float
    rate_hz: float | None
    median_interval_ms: float | None
    jitter_ms: float | None
    gaps: tuple[Gap, ...]

    @property
    def dropped_frames(self) -> int:
        return sum(gap.missing for gap in self.gaps)


def read_table(
    path: Path, expected: str, missing: str = "is missing", **options: Any
) -> pd.DataFrame:
    """A timestamp file as a table (`pd.read_csv` with `options`), its column names stripped;
    a missing, empty or unparsable file is a one-line error naming it."""
    if not path.is_file():
        raise MiniscopeFormatError(path, missing)
    try:
        table = pd.read_csv(path, encoding="utf-8-sig", **options)
    except OSError as error:
        raise MiniscopeFormatError(path, f"cannot be read ({error.strerror or error})") from error
    except pd.errors.EmptyDataError as error:
        raise MiniscopeFormatError(path, f"is empty (expected {expected})") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        said = " ".join(str(error).split())  # pandas' messages end in a newline
        raise MiniscopeFormatError(path, f"is not a readable table ({expected}): {said}") from error
    table.columns = [str(column).strip() for column in table.columns]
    return table


def read_timestamps(path: Path, repair: bool = False) -> pd.DataFrame:
    """Columns renamed to frame/time_ms/buffer[/daq_frame/unix_ms]; read by name, not position.

    Times are integer ms as the DAQ writes them, or float ms when a file holds fractions (kept,
    never cut). A damaged last row (a write cut short) is dropped
    with a warning. Any other row whose time is not a number, or runs backwards, is an error
    naming the row, found before any video is decoded; with `repair` (an auxiliary stream such
    as a behaviour camera's, which must never cost the imaging) such a row between two good
    ones gets the time halfway between them instead, counted in a warning.
    """
    table = read_table(path, "a header and one row per frame", skipinitialspace=True)
    if TIME_COLUMN not in table.columns:
        raise MiniscopeFormatError(
            path, f"has no {TIME_COLUMN!r} column (columns: {', '.join(table.columns)})"
        )
    table = table[[c for c in table.columns if c in _COLUMNS]].rename(columns=_COLUMNS)
    for column in table.columns:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    time_ms = table["time_ms"].to_numpy(dtype=np.float64)
    if len(time_ms) and _damaged(time_ms)[-1]:
        warnings.warn(
            f"{path}: its last row (line {len(time_ms) + 1}) is damaged (a write cut short?); "
            "it is dropped",
            MiniscopeWarning,
            stacklevel=2,
        )
        table, time_ms = table.iloc[:-1], time_ms[:-1]
    time_ms = _checked_times(time_ms, path, repair)
    whole = np.array_equal(time_ms, np.round(time_ms))  # integer ms, as the DAQ writes them
    table = table.assign(time_ms=time_ms.astype(np.int64) if whole else time_ms)
    for column in table.columns.drop("time_ms"):  # counters: -1 where a row lost its value
        table[column] = table[column].fillna(-1).astype(np.int64)
    return table.reset_index(drop=True)


def _damaged(time_ms: np.ndarray) -> np.ndarray:
    """Rows whose time is no finite number (or absurdly far from the start: `MAX_TIME_MS`), or
    is out of order where its neighbours are not
    (one bad value), or (the last row) comes before the row ahead of it."""
    bad = ~np.isfinite(time_ms) | (np.abs(time_ms) > MAX_TIME_MS)
    filled = pd.Series(time_ms).where(~bad).ffill().bfill().to_numpy()
    if len(filled) >= 3:
        before, here, after = filled[:-2], filled[1:-1], filled[2:]
        bad[1:-1] |= (before <= after) & ((here < before) | (here > after))
    if len(filled) >= 2:
        bad[-1] |= filled[-1] < filled[-2]
    return bad


def _checked_times(time_ms: np.ndarray, path: Path, repair: bool) -> np.ndarray:
    bad = _damaged(time_ms)
    if bad.any() and repair:
        time_ms = _interpolated(time_ms, bad, path)
        bad = _damaged(time_ms)
    backwards = np.flatnonzero(np.diff(time_ms) < 0)
    if bad.any() or len(backwards):
        row = int(np.flatnonzero(bad)[0]) if bad.any() else int(backwards[0]) + 1
        if not np.isfinite(time_ms[row]):
            problem = f"row {row + 2}: the time is not a number"
        elif abs(time_ms[row]) > MAX_TIME_MS:
            problem = f"row {row + 2}: time {time_ms[row]:g} ms is beyond any recording"
        else:
            problem = (
                f"row {row + 2}: time {time_ms[row]:g} ms is out of order with the rows "
                "around it (damaged, or the clock went back)"
            )
        raise MiniscopeFormatError(
            path, f"{problem}, so its frames' times cannot be trusted; nothing is converted"
        )
    return time_ms


def _interpolated(time_ms: np.ndarray, bad: np.ndarray, path: Path) -> np.ndarray:
    """Damaged rows get times from the good rows: interpolated between two of them, or (before
    the first and after the last) one median frame interval per row beyond it."""
    rows, good = np.arange(len(time_ms)), ~bad
    if good.sum() < 2:
        return time_ms  # nothing to go by: refused as damaged
    known_rows, known = rows[good], time_ms[good]
    step = float(np.median(np.diff(known) / np.diff(known_rows)))
    fixed = time_ms.copy()
    fixed[bad] = np.interp(rows[bad], known_rows, known)
    before, after = bad & (rows < known_rows[0]), bad & (rows > known_rows[-1])
    fixed[before] = known[0] - (known_rows[0] - rows[before]) * step
    fixed[after] = known[-1] + (rows[after] - known_rows[-1]) * step
    lines = ", ".join(str(row + 2) for row in np.flatnonzero(bad)[:5])
    more = ", ..." if bad.sum() > 5 else ""
    warnings.warn(
        f"{path}: {int(bad.sum())} of {len(time_ms)} rows damaged (time not a number or "
        f"out of order; lines {lines}{more}); their times are interpolated from the rows around",
        MiniscopeWarning,
        stacklevel=3,
    )
    return fixed


def find_gaps(time_ms: np.ndarray, daq_frame: np.ndarray | None = None) -> tuple[Gap, ...]:
    """Gaps of more than GAP_FACTOR median intervals, and DAQ frame-counter jumps."""
    if len(time_ms) < 3:
        return ()
    intervals = np.diff(time_ms)
    median = float(np.median(intervals))
    missing = np.zeros(len(intervals), dtype=np.int64)
    if median > 0:
        long = intervals > GAP_FACTOR * median
        missing[long] = np.maximum(np.rint(intervals[long] / median).astype(np.int64) - 1, 1)
    if daq_frame is not None:
        missing = np.maximum(missing, np.clip(np.diff(daq_frame) - 1, 0, None))
    return tuple(
        Gap(int(row), float(time_ms[row]), float(time_ms[row + 1]), int(missing[row]))
        for row in np.flatnonzero(missing)
    )


def measure_timing(table: pd.DataFrame) -> Timing:
    """Rate and jitter over the intervals that are not gaps."""
    time_ms = table["time_ms"].to_numpy()
    daq = table["daq_frame"].to_numpy() if "daq_frame" in table else None
    gaps = find_gaps(time_ms, daq)
    if len(time_ms) < 2:
        return Timing(len(time_ms), 0.0, None, None, None, gaps)
    intervals = np.diff(time_ms).astype(float)
    keep = np.ones(len(intervals), dtype=bool)
    keep[[gap.after_row for gap in gaps]] = False
    regular = intervals[keep] if keep.any() else intervals
    mean = float(regular.mean())
    return Timing(
        n_frames=len(time_ms),
        duration_s=float(time_ms[-1] - time_ms[0]) / 1000.0,
        rate_hz=1000.0 / mean if mean > 0 else None,
        median_interval_ms=float(np.median(intervals)),
        jitter_ms=float(regular.std()),
        gaps=gaps,
    )


def regular_timestamps_ms(n_frames: int, rate_hz: float) -> np.ndarray:
    """Times for a recording that has no timeStamps.csv: evenly spaced from 0."""
    return np.arange(n_frames, dtype=np.float64) * (1000.0 / rate_hz)
