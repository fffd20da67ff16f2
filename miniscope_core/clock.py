"""Time in a Miniscope session: when each acquisition started, and the NWB file's time zero.

Every time in the file is integer milliseconds since the Unix epoch until the last moment
(`msecSinceEpoch` of the acquisition plus the `timeStamps.csv` value), so no rounding ever
shifts one device against another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MiniscopeFormatError
from .sync import NewTimestamps, TimeAlignment

if TYPE_CHECKING:
    from .recordings import Recording
    from .session import Session

_START_FIELDS = ("year", "month", "day", "hour", "minute", "second", "msec", "msecSinceEpoch")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StartTime:
    """Recording start: the UTC instant, and the acquisition PC's UTC offset at that moment."""

    epoch_ms: int
    utc_offset_minutes: int
    # Legacy V3: read from folder names (to the second, zone assumed), so a given start wins.
    from_folder_names: bool = False

    def as_datetime(self, epoch_ms: int | None = None) -> datetime:
        """This start (or another instant, in the same local zone) as an aware datetime."""
        instant = _EPOCH + timedelta(milliseconds=self.epoch_ms if epoch_ms is None else epoch_ms)
        return instant.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))


def parse_start_time(metadata: dict[str, Any], path: Path) -> StartTime:
    """Start time from nested `recordingStartTime` (v1.10+) or flat keys (v1.0x).

    The local wall-clock fields minus the UTC `msecSinceEpoch` give the PC's UTC offset.
    """
    fields = metadata.get("recordingStartTime", metadata)
    if not isinstance(fields, dict) or any(key not in fields for key in _START_FIELDS):
        missing = [
            key for key in _START_FIELDS if not isinstance(fields, dict) or key not in fields
        ]
        raise MiniscopeFormatError(path, f"has no recording start time (missing {missing})")
    try:
        year, month, day, hour, minute, second = (int(fields[key]) for key in _START_FIELDS[:6])
        local = datetime(year, month, day, hour, minute, second)
        local += timedelta(milliseconds=int(fields["msec"]))
        epoch_ms = int(fields["msecSinceEpoch"])
    except (TypeError, ValueError) as error:
        raise MiniscopeFormatError(path, f"has an invalid recording start time: {error}") from error
    utc = (_EPOCH + timedelta(milliseconds=epoch_ms)).replace(tzinfo=None)
    offset_minutes = round((local - utc).total_seconds() / 900) * 15
    return StartTime(epoch_ms=epoch_ms, utc_offset_minutes=offset_minutes)


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

    Starts read from legacy V3 folder names are wall-clock seconds in an assumed zone, so a
    given `session_start_time` is taken as the first acquisition's Record instead: later
    acquisitions keep their distance from it, frames their sysClock.
    """
    starts = [a.start for a in session.acquisitions if a.start is not None]
    user_start = (metadata.get("NWBFile") or {}).get("session_start_time")
    if user_start is not None:
        user_ms = round(user_start.timestamp() * 1000)
        named = [s.epoch_ms for s in starts if s.from_folder_names]
        anchor = min(named) if named else user_ms
        return SessionClock(start=user_start, start_ms=anchor, fallback_ms=anchor)
    if len(starts) < len(session.acquisitions):
        raise MiniscopeFormatError(
            session.root,
            "has no recording start time (no session metaData.json, or for a legacy V3 "
            "recording no M_D_YYYY/H<h>_M<m>_S<s> folder names); give "
            "NWBFile.session_start_time in the metadata file (--metadata)",
        )
    firsts = [r.start_ms(0) + int(r.table["time_ms"].min()) for r in recordings if len(r.table)]
    start_ms = min(firsts) if firsts else starts[0].epoch_ms
    zone = min(starts, key=lambda s: s.epoch_ms)
    return SessionClock(start=zone.as_datetime(start_ms), start_ms=start_ms, fallback_ms=start_ms)
