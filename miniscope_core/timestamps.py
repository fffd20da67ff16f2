"""timeStamps.csv: per-frame times, the measured frame rate, and dropped frames.

The stored `frameRate` is only what was requested; the DAQ's own timestamps are the truth.
Frame Number is always contiguous, so a dropped frame shows only as a gap in time (or, from
DAQ software v2.0, as a jump in `DAQ Frame Number`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import MiniscopeFormatError

TIME_COLUMN = "Time Stamp (ms)"
_COLUMNS = {
    "Frame Number": "frame",
    TIME_COLUMN: "time_ms",
    "Buffer Index": "buffer",
    "DAQ Frame Number": "daq_frame",
    "Unix Time Stamp (ms)": "unix_ms",
}
# An interval this many times the median means at least one frame was lost.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class Gap:
    """Frames missing between row `after_row` and the next one."""

    after_row: int
    start_ms: int
    stop_ms: int
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
        table = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as error:
        raise MiniscopeFormatError(path, f"is empty (expected {expected})") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise MiniscopeFormatError(
            path, f"is not a readable table ({expected}): {error}"
        ) from error
    table.columns = [str(column).strip() for column in table.columns]
    return table


def read_timestamps(path: Path) -> pd.DataFrame:
    """Columns renamed to frame/time_ms/buffer[/daq_frame/unix_ms]; read by name, not position."""
    table = read_table(path, "a header and one row per frame", skipinitialspace=True)
    if TIME_COLUMN not in table.columns:
        raise MiniscopeFormatError(
            path, f"has no {TIME_COLUMN!r} column (columns: {', '.join(table.columns)})"
        )
    table = table[[c for c in table.columns if c in _COLUMNS]].rename(columns=_COLUMNS)
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise MiniscopeFormatError(path, f"row {row + 2}: {column} is not a number")
        table[column] = values.astype(np.int64)
    return table.reset_index(drop=True)


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
        Gap(int(row), int(time_ms[row]), int(time_ms[row + 1]), int(missing[row]))
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
