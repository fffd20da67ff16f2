"""What a session's QC page and its asset metadata show: plain dataclasses, no drawing.

Every number a check or the page's verdict uses is computed here once (`SessionQC.verdicts`,
`SessionQC.as_metadata`), so the page, the Dagster metadata and the asset checks cannot
disagree. Times are seconds on the session clock; images are in display order (row = y).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..daq.timestamps import find_gaps
from .motion import MotionEstimate, estimate_motion
from .stats import FrameSummary

DRIFT_FRACTION = 10  # brightness drift: the mean of the first tenth of frames vs the last tenth
DARK_FRACTION = 0.5  # a frame darker than this share of the median is left out of the motion


@dataclass(frozen=True)
class Thresholds:
    """Limits a session is flagged beyond: starting points a lab sets to its own taste."""

    dropped_percent: float = 2.0  # of the frames a device should have recorded (worst device)
    max_motion_px: float = 10.0  # about a cell's diameter in a V4 frame
    brightness_drift_percent: float = 20.0  # either way: bleaching, or an LED or focus change


@dataclass(frozen=True)
class Verdict:
    """One summary number against its limit."""

    key: str  # as in `SessionQC.as_metadata`
    label: str
    value: float | None  # None: not measured (no frames, no timestamps)
    limit: float
    unit: str

    @property
    def passed(self) -> bool | None:
        """True within the limit, False beyond it, None when not measured."""
        if self.value is None:
            return None
        return abs(self.value) <= self.limit

    def describe(self) -> str:
        """`1.2 % (limit 1 %): beyond the limit`, in words a scientist reads."""
        if self.value is None:
            return "not measured"
        outcome = "within the limit" if self.passed else "beyond the limit"
        limit = f"{_number(self.limit)} {self.unit}"
        return f"{_number(self.value)} {self.unit} (limit {limit}): {outcome}"


@dataclass(frozen=True, eq=False)  # arrays: compare fields, not objects
class ImagingSeries:
    """One imaging series: its field of view, brightness per frame, and motion."""

    name: str  # the NWB series' name
    device: str
    acquisition: str  # the acquisition's folder name; "" for a series spanning the session
    times_s: np.ndarray  # float64 (n,): every frame's time
    brightness: np.ndarray  # float64 (n,): mean pixel value per frame, NaN: not decoded
    mean_projection: np.ndarray  # (height, width)
    max_projection: np.ndarray  # (height, width)
    motion: MotionEstimate | None = None

    @classmethod
    def from_summary(
        cls,
        name: str,
        device: str,
        acquisition: str,
        summary: FrameSummary,
        times_s: np.ndarray,
        *,
        motion: bool = True,
        starts: Sequence[int] = (),
    ) -> ImagingSeries:
        """A series from its merged `FrameStats` summary and its frames' times; the motion is
        estimated on the kept subsample (`motion=False`: not estimated), without frames darker
        than `DARK_FRACTION` of the median (the LED off: noise would read as motion). Frames
        beyond the shorter of the two (video frames vs timestamps) are left out, as the
        conversion does. `starts` are the rows where each acquisition's frames begin: each is
        registered against its own mean (the scope may be remounted or refocused between)."""
        times_s = np.asarray(times_s, dtype=np.float64)
        n = min(len(times_s), len(summary.brightness))
        estimate = None
        if motion:
            indices = summary.sample_indices
            kept = indices < n
            if kept.any():  # a dark frame (LED off) has no picture to register: left out
                light = summary.brightness[indices[kept]]
                kept[kept] = ~(light < DARK_FRACTION * np.nanmedian(summary.brightness[:n]))
            samples = summary.samples if kept.all() else summary.samples[kept]
            block = summary.sample_block
            estimate = _motion_by_part(indices[kept], samples, starts, block)
        return cls(
            name=name,
            device=device,
            acquisition=acquisition,
            times_s=times_s[:n],
            brightness=summary.brightness[:n],
            mean_projection=summary.mean_projection,
            max_projection=summary.max_projection,
            motion=estimate,
        )

    @property
    def n_frames(self) -> int:
        return len(self.times_s)

    @property
    def brightness_drift_percent(self) -> float | None:
        """How much brighter (+) or darker (-) the last tenth of frames is than the first (%)."""
        seen = self.brightness[~np.isnan(self.brightness)]
        if len(seen) < 2:
            return None
        tenth = max(1, len(seen) // DRIFT_FRACTION)
        first, last = float(seen[:tenth].mean()), float(seen[-tenth:].mean())
        return 100.0 * (last - first) / first if first > 0 else None

    @property
    def max_motion_px(self) -> float | None:
        return self.motion.max_displacement_px if self.motion is not None else None

    @property
    def motion_times_s(self) -> np.ndarray:
        """The times of the frames the motion was estimated on."""
        return self.motion.times(self.times_s) if self.motion is not None else np.zeros(0)


@dataclass(frozen=True, eq=False)
class DeviceTimeline:
    """One device's frame times over the session and the frames it dropped."""

    device: str
    timestamps_s: np.ndarray  # float64 (n,): every kept frame, acquisitions one after another
    acquisition_starts: tuple[int, ...]  # the row where each acquisition's frames begin
    dropped_at_s: np.ndarray  # float64 (g,): the time of the frame after which frames are missing
    dropped_counts: np.ndarray  # int64 (g,): how many frames are missing there

    @classmethod
    def from_acquisitions(
        cls,
        device: str,
        times_s: Sequence[np.ndarray],
        daq_frames: Sequence[np.ndarray | None] | None = None,
    ) -> DeviceTimeline:
        """From each acquisition's frame times (s, session clock) and, where the DAQ wrote one,
        its frame counter. Gaps are found per acquisition, as the conversion finds them (the
        pause between two acquisitions is no dropped frame)."""
        frames = daq_frames if daq_frames is not None else [None] * len(times_s)
        starts, at, counts, row = [], [], [], 0
        for seconds, counter in zip(times_s, frames, strict=True):
            seconds = np.asarray(seconds, dtype=np.float64)
            starts.append(row)
            for gap in find_gaps(seconds * 1000.0, counter):
                at.append(seconds[gap.after_row])
                counts.append(gap.missing)
            row += len(seconds)
        stamps = np.concatenate([np.asarray(s, np.float64) for s in times_s]) if times_s else None
        return cls(
            device=device,
            timestamps_s=stamps if stamps is not None else np.zeros(0),
            acquisition_starts=tuple(starts),
            dropped_at_s=np.asarray(at, dtype=np.float64),
            dropped_counts=np.asarray(counts, dtype=np.int64),
        )

    @property
    def n_frames(self) -> int:
        return len(self.timestamps_s)

    @property
    def intervals_ms(self) -> np.ndarray:
        """float64 (n,): the interval before each frame (ms); NaN for each acquisition's first."""
        intervals = np.full(self.n_frames, np.nan)
        intervals[1:] = np.diff(self.timestamps_s) * 1000.0
        intervals[[s for s in self.acquisition_starts if s < self.n_frames]] = np.nan
        return intervals

    @property
    def median_interval_ms(self) -> float | None:
        intervals = self.intervals_ms
        intervals = intervals[~np.isnan(intervals)]
        return float(np.median(intervals)) if len(intervals) else None

    @property
    def rate_hz(self) -> float | None:
        median = self.median_interval_ms
        return 1000.0 / median if median else None

    @property
    def dropped(self) -> int:
        return int(self.dropped_counts.sum())

    @property
    def dropped_percent(self) -> float | None:
        """Dropped frames as a share of the frames the device should have recorded (%)."""
        expected = self.n_frames + self.dropped
        return 100.0 * self.dropped / expected if expected else None

    @property
    def duration_s(self) -> float:
        """The time recorded: each acquisition's first to last frame, added up."""
        bounds = [*self.acquisition_starts, self.n_frames]
        return float(
            sum(
                self.timestamps_s[end - 1] - self.timestamps_s[start]
                for start, end in zip(bounds, bounds[1:], strict=False)
                if end > start
            )
        )


@dataclass(frozen=True, eq=False)
class HeadOrientation:
    """Head orientation samples (BNO055 quaternions) of one scope."""

    device: str
    times_s: np.ndarray  # float64 (n,)
    quaternions: np.ndarray  # float64 (n, 4): w, x, y, z

    def euler_degrees(self) -> np.ndarray:
        """float64 (n, 3): roll, pitch, yaw in degrees (intrinsic z-y'-x'', the aerospace order
        in which a head's turn, nod and tilt read as yaw, pitch and roll)."""
        q = np.asarray(self.quaternions, dtype=np.float64)
        if len(q) == 0:
            return np.zeros((0, 3))
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        w, x, y, z = (q / np.where(norm > 0, norm, 1.0)).T
        roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
        pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
        yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        return np.degrees(np.stack([roll, pitch, yaw], axis=1))


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """One behaviour-camera frame of an acquisition, to see the animal and the arena."""

    device: str
    acquisition: str
    image: np.ndarray  # uint8 (height, width) gray or (height, width, 3) RGB
    time_s: float | None = None


@dataclass(frozen=True)
class AcquisitionSettings:
    """One device's settings in one acquisition, name -> value, as recorded."""

    acquisition: str
    device: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Validation:
    """The NWB file's validation: passed, and the problems found (one line each)."""

    passed: bool
    problems: tuple[str, ...] = ()
    checked_with: str = ""  # e.g. "nwbinspector 0.7.1"


@dataclass(frozen=True, eq=False)
class SessionQC:
    """Everything the QC page of one session shows."""

    session: str
    nwb_file: str  # as the page names it (the file's name, or its path)
    imaging: Sequence[ImagingSeries] = ()
    timelines: Sequence[DeviceTimeline] = ()
    orientation: Sequence[HeadOrientation] = ()
    camera_frames: Sequence[CameraFrame] = ()
    settings: Sequence[AcquisitionSettings] = ()
    validation: Validation | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    made_by: str = ""  # the converter and its version

    @property
    def frames(self) -> int:
        """Imaging frames in the file, all scopes and acquisitions (behaviour frames are not)."""
        return sum(series.n_frames for series in self.imaging)

    @property
    def duration_s(self) -> float | None:
        """The longest time any device recorded (acquisitions added up, pauses left out)."""
        durations = [t.duration_s for t in self.timelines if t.n_frames]
        if not durations:
            durations = [
                float(s.times_s[-1] - s.times_s[0]) for s in self.imaging if s.n_frames > 1
            ]
        return max(durations) if durations else None

    @property
    def dropped_frames(self) -> int:
        return sum(timeline.dropped for timeline in self.timelines)

    @property
    def dropped_percent(self) -> float | None:
        """The worst device's dropped share (%): a check on it fails for any device's losses."""
        return _largest([t.dropped_percent for t in self.timelines])

    @property
    def max_motion_px(self) -> float | None:
        return _largest([series.max_motion_px for series in self.imaging])

    @property
    def brightness_drift_percent(self) -> float | None:
        """The series' drift that is largest either way (signed)."""
        return _largest([series.brightness_drift_percent for series in self.imaging])

    def verdicts(self) -> list[Verdict]:
        """The summary numbers against the thresholds, in the order the page shows them."""
        limits = self.thresholds
        return [
            Verdict("dropped_percent", "Dropped frames", self.dropped_percent,
                    limits.dropped_percent, "%"),
            Verdict("max_motion_px", "Largest motion", self.max_motion_px,
                    limits.max_motion_px, "px"),
            Verdict("brightness_drift_percent", "Brightness drift", self.brightness_drift_percent,
                    limits.brightness_drift_percent, "%"),
        ]  # fmt: skip

    @property
    def passed(self) -> bool:
        """No number beyond its limit and the file validated (unmeasured numbers pass)."""
        valid = self.validation is None or self.validation.passed
        return valid and all(verdict.passed is not False for verdict in self.verdicts())

    def as_metadata(self) -> dict[str, float | int | None]:
        """The summary as plain JSON-ready numbers (None: not measured), for asset metadata."""
        return {
            "frames": self.frames,
            "duration_s": _rounded(self.duration_s),
            "dropped_frames": self.dropped_frames,
            "dropped_percent": _rounded(self.dropped_percent),
            "max_motion_px": _rounded(self.max_motion_px),
            "brightness_drift_percent": _rounded(self.brightness_drift_percent),
        }


def _motion_by_part(
    indices: np.ndarray, samples: np.ndarray, starts: Sequence[int], binned: int
) -> MotionEstimate:
    """`estimate_motion` of each run of rows from one start to the next, put back together
    (`indices` ascending: each run is a slice of `samples`, not a copy)."""
    edges = np.searchsorted(indices, sorted({0, *starts}))
    parts = [
        estimate_motion(indices[low:high], samples[low:high], binned=binned)
        for low, high in zip(edges, [*edges[1:], len(indices)], strict=True)
        if high > low
    ]
    if not parts:
        return estimate_motion(indices, samples, binned=binned)
    return MotionEstimate(
        np.concatenate([p.indices for p in parts]),
        np.concatenate([p.shifts for p in parts]),
        max(p.downsample for p in parts),
    )


def _largest(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None and math.isfinite(value)]
    return max(known, key=abs) if known else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _number(value: float) -> str:
    """`1.25`, `12.3`, `140`: three significant digits, as people read a summary."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
