"""NeuroConv's time operations as the library's: frame times read as the converter reads them,
and aligned starting times or timestamps as one `TimeAlignment` of the whole file.

NeuroConv counts each interface's times from its own Record (`timeStamps.csv` / 1000), shifted
by `set_aligned_starting_time`. The library counts every time from the session's start; given
the recorded start (see `_metadata.translate`), an acquisition's local times are its own plus
its start's distance from the first. A shift or new timestamps become sync pairs on those local
times, so every device of an acquisition moves with it and nothing is rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..daq.model import Acquisition, Device, Session
from ..options import ConversionOptions
from ..pipeline.stages import probe_videos
from ..timing.recordings import Recording, session_recordings
from ..timing.sync import TimeAlignment
from .errors import NeuroConvUnsupported


@dataclass(frozen=True)
class Alignment:
    """What a script set on one interface: a starting time, or a time for every frame."""

    starting_time: float | None = None
    timestamps: np.ndarray | None = None

    @property
    def is_set(self) -> bool:
        return self.starting_time is not None or self.timestamps is not None


def recordings(session: Session) -> list[Recording]:
    """Every device's kept frames and their times, from packets and timestamps (no decoding)."""
    return session_recordings(
        session, probe_videos(session, ConversionOptions()), concatenated=False
    )


def native_seconds(recording: Recording) -> np.ndarray:
    """NeuroConv's original timestamps: `timeStamps.csv` of the kept frames, in seconds."""
    return np.asarray(recording.time_ms, dtype=np.float64) / 1000.0


def aligned(native: np.ndarray, alignment: Alignment) -> np.ndarray:
    if alignment.timestamps is not None:
        return alignment.timestamps.copy()
    return native + (alignment.starting_time or 0.0)


def _table_range(acquisition: Acquisition) -> tuple[float, float]:
    """The first and last time (ms) any device of the acquisition recorded."""
    lows, highs = [], []
    for device in acquisition.devices:
        table = device.timestamps
        if table is not None and len(table):
            lows.append(float(table["time_ms"].min()))
            highs.append(float(table["time_ms"].max()))
    return (min(lows), max(highs)) if lows else (0.0, 0.0)


def file_alignment(
    session: Session,
    alignments: Mapping[str, Alignment],
    devices: Mapping[str, Sequence[Device]],
    source: str,
) -> TimeAlignment | None:
    """One mapping of the session's local times; None when nothing was set (recorded times).

    `alignments` and `devices` are keyed by interface. An acquisition's interfaces must agree;
    an unset one keeps its recorded place.
    """
    if not session.acquisitions or session.acquisitions[0].start is None:
        if any(a.is_set for a in alignments.values()):
            raise NeuroConvUnsupported(
                "aligning times of a recording without a start time",
                "give the session's metaData.json (recordingStartTime)",
            )
        return None
    first = min(a.start.epoch_ms for a in session.acquisitions if a.start is not None)
    frames = {key: recording for recording in recordings(session) for key in [id(recording.device)]}
    pairs: list[tuple[float, float]] = []
    for acquisition in session.acquisitions:
        keys = [k for k, ds in devices.items() if any(d in acquisition.devices for d in ds)]
        set_here = {k: alignments.get(k, Alignment()) for k in keys}
        given = {k: a for k, a in set_here.items() if a.is_set}
        offset_s = ((acquisition.start.epoch_ms if acquisition.start else first) - first) / 1000
        if not given:
            low, high = _table_range(acquisition)
            pairs += [(offset_s + low / 1000, offset_s + low / 1000)]
            pairs += [(offset_s + max(high, low + 1) / 1000,) * 2]
            continue
        shifts = {a.starting_time for a in given.values()}
        if len(given) > 1 and (
            len(shifts) > 1 or any(a.timestamps is not None for a in given.values())
        ):
            raise NeuroConvUnsupported(
                f"aligning {', '.join(keys)} differently within one acquisition",
                "set one starting time on one (or every) interface of an acquisition",
            )
        key, alignment = next(iter(given.items()))
        if alignment.timestamps is not None:
            own = [frames[id(d)] for d in devices[key] if id(d) in frames]
            local = np.concatenate([offset_s + native_seconds(r) for r in own])
            pairs += list(zip(local.tolist(), alignment.timestamps.tolist(), strict=True))
        else:
            shift = float(alignment.starting_time or 0.0)
            low, high = _table_range(acquisition)
            for t in (low, max(high, low + 1)):
                pairs.append((offset_s + t / 1000, t / 1000 + shift))
    if all(local == reference for local, reference in pairs):
        return None
    pairs.sort()
    try:
        return TimeAlignment(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), source=source)
    except ValueError as error:
        raise NeuroConvUnsupported(
            f"aligned times that run backwards or overlap ({error})",
            "give each acquisition a starting time after the previous one ends",
        ) from None
