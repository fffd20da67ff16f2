"""Time in a Miniscope session: the NWB file's time zero, and every time on its clock.

Every time in the file is milliseconds since the Unix epoch until the last moment
(`msecSinceEpoch` of the acquisition plus the `timeStamps.csv` value), so no rounding ever
shifts one device against another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from ..daq.model import Session
from ..errors import MiniscopeFormatError
from .recordings import Recording
from .sync import NewTimestamps, TimeAlignment


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
