"""When an acquisition started: the session metaData.json's date fields and `msecSinceEpoch`.

The date fields are the acquisition PC's local wall clock and `msecSinceEpoch` the same instant
in UTC, so the PC's UTC offset is recovered from the two; without `msecSinceEpoch` the zone is
assumed (and said).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import MiniscopeFormatError, MiniscopeWarning

_DATE_FIELDS = ("year", "month", "day", "hour", "minute", "second")
_START_FIELDS = (*_DATE_FIELDS, "msec", "msecSinceEpoch")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AssumedZoneWarning(MiniscopeWarning):
    """A recording start was read in this computer's time zone: the file carries none."""


@dataclass(frozen=True)
class StartTime:
    """Recording start: the UTC instant, and the acquisition PC's UTC offset at that moment."""

    epoch_ms: int
    utc_offset_minutes: int
    # Wall-clock fields read in this computer's time zone (the file gives no UTC instant), so
    # a given NWBFile.session_start_time wins (see `session_clock`).
    zone_assumed: bool = False
    # Legacy V3: read from folder names, to the second (always zone_assumed).
    from_folder_names: bool = False

    def __post_init__(self) -> None:
        if self.from_folder_names and not self.zone_assumed:
            object.__setattr__(self, "zone_assumed", True)

    def as_datetime(self, epoch_ms: int | None = None) -> datetime:
        """This start (or another instant, in the same local zone) as an aware datetime."""
        instant = _EPOCH + timedelta(milliseconds=self.epoch_ms if epoch_ms is None else epoch_ms)
        return instant.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))


def has_start_time(metadata: dict[str, Any]) -> bool:
    """Whether `metadata` carries a recording start (nested or flat date fields)."""
    fields = metadata.get("recordingStartTime", metadata)
    return isinstance(fields, dict) and all(key in fields for key in _DATE_FIELDS)


def parse_start_time(metadata: dict[str, Any], path: Path) -> StartTime:
    """Start time from nested `recordingStartTime` (v1.10+) or flat keys (v1.0x).

    The local wall-clock fields minus the UTC `msecSinceEpoch` give the PC's UTC offset. Without
    `msecSinceEpoch` the fields are read in this computer's time zone (as legacy V3 folder names
    are), with an `AssumedZoneWarning`; a missing `msec` is then 0 (the start is to the second).
    With `msecSinceEpoch`, a missing `msec` changes nothing (the instant is exact, the offset is
    rounded to 15 minutes) and is not warned of.
    """
    nested = "recordingStartTime" in metadata
    if nested and not isinstance(metadata["recordingStartTime"], dict):
        value = _short(metadata["recordingStartTime"])
        raise MiniscopeFormatError(
            path, f"recordingStartTime = {value} is not a mapping of year, month, day, ..."
        )
    fields = metadata["recordingStartTime"] if nested else metadata
    where = "recordingStartTime." if nested else ""
    if not isinstance(fields, dict) or any(key not in fields for key in _DATE_FIELDS):
        missing = [
            key for key in _START_FIELDS if not isinstance(fields, dict) or key not in fields
        ]
        raise MiniscopeFormatError(path, f"has no recording start time (missing {missing})")
    values = {
        key: _whole_number(fields[key], path, where + key)
        for key in _START_FIELDS
        if fields.get(key) is not None or key in _DATE_FIELDS
    }
    try:
        local = datetime(
            values["year"], values["month"], values["day"],
            values["hour"], values["minute"], values["second"],
        )  # fmt: skip
    except ValueError as error:
        date = ", ".join(f"{key} {values[key]}" for key in _DATE_FIELDS)
        raise MiniscopeFormatError(
            path, f"has an invalid recording start time ({date}): {error}"
        ) from error
    local += timedelta(milliseconds=values.get("msec", 0))
    if "msecSinceEpoch" not in values:
        return _zone_assumed(local, "msec" in values, path, where)
    epoch_ms = values["msecSinceEpoch"]
    utc = (_EPOCH + timedelta(milliseconds=epoch_ms)).replace(tzinfo=None)
    offset_minutes = round((local - utc).total_seconds() / 900) * 15
    return StartTime(epoch_ms=epoch_ms, utc_offset_minutes=offset_minutes)


def _whole_number(value: Any, path: Path, key: str) -> int:
    """A start-time field as an int: a JSON integer (or a float or numeric string holding one)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not number.is_integer():
        raise MiniscopeFormatError(
            path, f"{key} = {_short(value)} is not a whole number (recording start time)"
        )
    return int(value) if isinstance(value, int) else int(number)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _zone_assumed(local: datetime, has_msec: bool, path: Path, where: str) -> StartTime:
    """The local wall-clock start in this computer's time zone, with a warning saying so."""
    aware = local.astimezone()
    offset = aware.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign, absolute = ("+" if minutes >= 0 else "-"), abs(minutes)
    zone = f"{aware.tzname()}, UTC{sign}{absolute // 60:02d}:{absolute % 60:02d}"
    precision = "" if has_msec else f" and no {where}msec (read as 0)"
    warnings.warn(
        f"{path}: no {where}msecSinceEpoch{precision}: the recording start "
        f"{local.isoformat(timespec='milliseconds')} was read in this computer's time zone "
        f"({zone}); NWBFile.session_start_time in the metadata file (--metadata) overrides it",
        AssumedZoneWarning,
        stacklevel=3,
    )
    return StartTime(round(aware.timestamp() * 1000), minutes, zone_assumed=True)
