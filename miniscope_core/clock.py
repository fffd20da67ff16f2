"""Time in a Miniscope session: when each acquisition started, and the NWB file's time zero.

Every time in the file is integer milliseconds since the Unix epoch until the last moment
(`msecSinceEpoch` of the acquisition plus the `timeStamps.csv` value), so no rounding ever
shifts one device against another.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MiniscopeFormatError, MiniscopeWarning
from .sync import NewTimestamps, TimeAlignment

if TYPE_CHECKING:
    from .recordings import Recording
    from .session import Session

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


@dataclass(frozen=True)
class SessionClock:
    """NWB time zero, how acquisitions without a recorded start are placed, and the alignment
    to another clock (if any) that every time in the file goes through."""

    start: datetime
    start_ms: int
    fallback_ms: int
    alignment: TimeAlignment | None = None

    def local_seconds(self, recording: Recording, time_ms: np.ndarray | None = None) -> np.ndarray:
        """Seconds since session start, exact to the DAQ's integer milliseconds."""
        times = recording.time_ms if time_ms is None else time_ms
        offset_ms = recording.start_ms(self.fallback_ms) - self.start_ms
        return (offset_ms + np.asarray(times, dtype=np.float64)) / 1000.0

    def seconds(self, recording: Recording, time_ms: np.ndarray | None = None) -> np.ndarray:
        """The times written to the file: local seconds, aligned when an alignment is set."""
        local = self.local_seconds(recording, time_ms)
        return self.alignment.apply(local) if self.alignment else local


def aligned_clock(
    clock: SessionClock,
    recordings: list[Recording],
    pairs: TimeAlignment | NewTimestamps | None,
    start_offset: float = 0.0,
) -> SessionClock:
    """`clock` on another clock: sync pairs (new timestamps of a device become pairs with its
    frames), then `start_offset` seconds added (NeuroConv's aligned starting time)."""
    if isinstance(pairs, NewTimestamps):
        own = [r for r in recordings if r.device.name == pairs.device]
        if not own:
            names = sorted({r.device.name for r in recordings})
            raise ValueError(f"new timestamps for {pairs.device!r}: the devices are {names}")
        pairs = pairs.alignment(np.concatenate([clock.local_seconds(r) for r in own]))
    if pairs is None and not start_offset:
        return clock
    pairs = pairs or TimeAlignment()
    return replace(clock, alignment=replace(pairs, start_offset=pairs.start_offset + start_offset))


def session_clock(
    session: Session, recordings: list[Recording], metadata: dict[str, Any]
) -> SessionClock:
    """Time zero: the earliest frame of the session (or the user's `session_start_time`, which
    the metadata schema has already checked to be an aware datetime).

    Starts read in an assumed zone (legacy V3 folder names, or a metaData.json without
    msecSinceEpoch: `StartTime.zone_assumed`) are wall-clock times whose zone is a guess, so a
    given `session_start_time` is taken as the first such acquisition's Record instead: later
    acquisitions keep their distance from it, frames their own times.
    """
    starts = [a.start for a in session.acquisitions if a.start is not None]
    user_start = (metadata.get("NWBFile") or {}).get("session_start_time")
    if user_start is not None:
        user_ms = round(user_start.timestamp() * 1000)
        named = [s.epoch_ms for s in starts if s.zone_assumed]
        anchor = min(named) if named else user_ms
        return SessionClock(start=user_start, start_ms=anchor, fallback_ms=anchor)
    if len(starts) < len(session.acquisitions):
        raise MiniscopeFormatError(
            session.root,
            "has no recording start time (no session metaData.json, or for a legacy V3 "
            "recording no M_D_YYYY/H<h>_M<m>_S<s> folder names); give "
            "NWBFile.session_start_time in the metadata file (--metadata)",
        )
    firsts = [
        r.start_ms(0) + math.floor(r.table["time_ms"].min()) for r in recordings if len(r.table)
    ]  # floor: a fractional first time must not fall before time zero
    start_ms = min(firsts) if firsts else starts[0].epoch_ms
    zone = min(starts, key=lambda s: s.epoch_ms)
    return SessionClock(start=zone.as_datetime(start_ms), start_ms=start_ms, fallback_ms=start_ms)
