"""headOrientation.csv: BNO055 quaternions (w, x, y, z), one row per frame time.

`0,0,0,0` rows mean "no sample" (sensor disabled or not ready); from DAQ v2.0 bad rows are
omitted instead, so samples are joined to frames by their own time column, never by row number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MiniscopeFormatError

_NAMES = ["time_ms", "qw", "qx", "qy", "qz"]


def read_head_orientation(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(time_ms int64 (N,), quaternions float64 (N, 4)) with the missing samples removed.

    Accepts both headers: `Time Stamp (ms),qw,qx,qy,qz` and the v0.11-v0.13 `qw,qx,qy,qz`
    whose rows still carry the time first.
    """
    try:
        table = pd.read_csv(path, header=None, skiprows=1, names=_NAMES, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        raise MiniscopeFormatError(
            path, f"is not a readable headOrientation CSV: {error}"
        ) from error
    values = table.apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        row = int(values.isna().any(axis=1).to_numpy().argmax())
        raise MiniscopeFormatError(
            path, f"row {row + 2} is not five numbers (time, qw, qx, qy, qz)"
        )
    quaternions = values[_NAMES[1:]].to_numpy(dtype=np.float64)
    present = np.any(quaternions != 0.0, axis=1)
    return values["time_ms"].to_numpy(dtype=np.int64)[present], quaternions[present]
