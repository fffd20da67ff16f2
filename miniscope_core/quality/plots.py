"""The QC page's time plots as data: what each plot shows, which the browser draws (uPlot,
inlined with `page.js` by `page.py`). No drawing here, and nothing imported but numpy.

Plots over time share one session axis: the acquisitions of a session are minutes or hours
apart, so the axis is broken at every pause (longer than `PAUSE_S` in all devices' times), one
panel per stretch of recording, each as wide as its duration (at least `MIN_PANEL` of the
plot); lines are broken there too (a null between the two points). Beyond `MAX_PANELS`
stretches (a long day of short acquisitions) one panel holds them all, the pauses cut out at
dashed lines. Every x value given to the browser is already on that axis (its unit, the pauses
cut when they are).

A line longer than `MAX_POINTS` is decimated: the lowest and the highest point of each run of
consecutive points (and a gap, where the run has one), so spikes stay visible and an hour-long
recording (100,000+ frames per device) makes a page of bounded size. Dropped-frame markers are
never decimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import DeviceTimeline, HeadOrientation, ImagingSeries

PAUSE_S = 10.0
MIN_PANEL = 0.12
MAX_PANELS = 3
CUT_S = 2.0  # the room a cut pause takes on a one-panel axis, s
MAX_POINTS = 3600  # per line: beyond, min and max of MAX_POINTS // 3 runs (the plot's ~1000 px)
COLOURS = ("#1f6f8b", "#e07a1f", "#5a8f29", "#8e44ad", "#c0392b", "#7f8c8d")
LIMIT_COLOUR = "#c0392b"
BAND_COLOUR = "rgba(224, 122, 31, 0.15)"  # the shaded bands (page.js takes it from the data)
X_DECIMALS, Y_DECIMALS = 6, 4  # what the page carries of each value (0.06 ms on a min axis)


@dataclass(frozen=True)
class SessionAxis:
    """The stretches of recording a session's time plots show, and their unit."""

    spans: tuple[tuple[float, float], ...]  # (first, last) time of each stretch, s
    scale: float  # seconds -> the unit shown
    unit: str

    @classmethod
    def of(cls, times: Sequence[np.ndarray]) -> SessionAxis:
        """The stretches of all `times` (s), split at pauses; minutes when they are long."""
        finite = [t[np.isfinite(t)] for t in (np.asarray(t, np.float64) for t in times)]
        every = np.unique(np.concatenate(finite)) if finite else np.zeros(0)
        if len(every) == 0:
            return cls(((0.0, 1.0),), 1.0, "s")
        cuts = np.flatnonzero(np.diff(every) > PAUSE_S)
        starts = [every[0], *every[cuts + 1]]
        stops = [*every[cuts], every[-1]]
        spans = tuple((float(a), float(b)) for a, b in zip(starts, stops, strict=True))
        recorded = sum(b - a for a, b in spans)
        scale, unit = (1 / 60, "min") if recorded > 300 else (1.0, "s")
        return cls(spans, scale, unit)

    @property
    def cut(self) -> bool:
        """One panel, the pauses cut out (too many stretches for a panel each)."""
        return len(self.spans) > MAX_PANELS

    @property
    def offsets(self) -> np.ndarray:
        """Where each stretch starts on a one-panel axis (s), the pauses cut out."""
        durations = [b - a for a, b in self.spans]
        return np.concatenate([[0.0], np.cumsum(np.add(durations, CUT_S))[:-1]])

    def x(self, times_s: np.ndarray | float) -> np.ndarray:
        """Session times (s) as the axis shows them (its unit; the pauses cut when `cut`)."""
        times = np.asarray(times_s, dtype=np.float64)
        if not self.cut:
            return times * self.scale
        starts = np.array([a for a, _ in self.spans])
        which = np.clip(np.searchsorted(starts, times, "right") - 1, 0, len(starts) - 1)
        return (times - starts[which] + self.offsets[which]) * self.scale

    def panels(self) -> list[tuple[float, float]]:
        """Each panel's (first, last) on the axis, in its unit."""
        if not self.cut:
            return [(a * self.scale, b * self.scale) for a, b in self.spans]
        last = self.offsets[-1] + self.spans[-1][1] - self.spans[-1][0]
        return [(0.0, float(last) * self.scale)]

    def ranges(self) -> list[tuple[float, float]]:
        """Each panel's x range: its stretch with a little room either side."""
        padded = []
        for first, last in self.panels():
            pad = max(0.02 * (last - first), 0.5 * self.scale)
            padded.append((first - pad, last + pad))
        return padded

    def widths(self) -> list[float]:
        """Each panel's share of the plot's width: its duration's, at least `MIN_PANEL`."""
        durations = np.array([max(b - a, 1e-3) for a, b in self.panels()])
        widths = np.maximum(durations / durations.sum(), MIN_PANEL)
        return [float(w) for w in widths / widths.sum()]

    def cuts(self) -> list[float]:
        """Where the dashed lines of a one-panel axis mark the cut pauses (axis unit)."""
        return [float((c - CUT_S / 2) * self.scale) for c in self.offsets[1:]] if self.cut else []

    @property
    def label(self) -> str:
        if self.cut:
            return (
                f"time recorded ({self.unit}): {len(self.spans)} stretches, the pauses between "
                "them cut out at the dashed lines"
            )
        gaps = " (broken at pauses)" if len(self.spans) > 1 else ""
        return f"time in session ({self.unit}){gaps}"


@dataclass(frozen=True, eq=False)
class Line:
    """One series of a plot: x on the session axis and y, NaN where the line breaks."""

    label: str
    colour: str
    x: np.ndarray
    y: np.ndarray
    width: float = 1.0  # px; 0: points only
    dots: float = 0.0  # each point's diameter, px; 0: none
    dash: bool = False


@dataclass(frozen=True, eq=False)
class Row:
    """One row of a plot: its lines and what is drawn with them, in every panel."""

    ylabel: str  # with its unit
    lines: tuple[Line, ...]
    ylim: tuple[float, float]
    height: int = 240  # px, with the x axis
    title: str = ""
    yticks: tuple[float, ...] | None = None  # None: uPlot's
    bands: tuple[tuple[float, float], ...] = ()  # shaded spans of x
    rules: tuple[float, ...] = ()  # grey horizontal lines at these y
    marks: tuple[tuple[float, int], ...] = ()  # red vertical lines at x, with a count


@dataclass(frozen=True)
class Key:
    """One entry of a plot's legend: `kind` is line, dash, dots, band or mark."""

    label: str
    colour: str
    kind: str = "line"


@dataclass(frozen=True, eq=False)
class Plot:
    """One figure of time plots: rows sharing the session axis, and its legend."""

    axis: SessionAxis
    rows: tuple[Row, ...]
    legend: tuple[Key, ...] = ()

    def data(self) -> dict[str, Any]:
        """What page.js draws, JSON-ready: NaN as None (a break), values rounded."""
        return {
            "panels": [
                [_round(a, X_DECIMALS), _round(b, X_DECIMALS)] for a, b in self.axis.ranges()
            ],
            "widths": [round(w, 4) for w in self.axis.widths()],
            "cuts": [_round(c, X_DECIMALS) for c in self.axis.cuts()],
            "colours": {"band": BAND_COLOUR, "mark": LIMIT_COLOUR},
            "rows": [
                {
                    "ylabel": row.ylabel,
                    "height": row.height,
                    "ylim": [_round(v, Y_DECIMALS) for v in row.ylim],
                    "yticks": list(row.yticks) if row.yticks is not None else None,
                    "bands": [[_round(a, X_DECIMALS), _round(b, X_DECIMALS)] for a, b in row.bands],
                    "rules": [_round(y, Y_DECIMALS) for y in row.rules],
                    "marks": [[_round(x, X_DECIMALS), int(n)] for x, n in row.marks],
                    "lines": [
                        {
                            "label": line.label,
                            "colour": line.colour,
                            "width": line.width,
                            "dots": line.dots,
                            "dash": line.dash,
                            "x": _values(line.x, X_DECIMALS),
                            "y": _values(line.y, Y_DECIMALS),
                        }
                        for line in row.lines
                    ],
                }
                for row in self.rows
            ],
        }


def brightness_plot(series: ImagingSeries, axis: SessionAxis) -> Plot:
    """Mean pixel value per frame, the first and last tenth (which the drift compares) shaded."""
    n = len(series.brightness)
    tenth = max(1, n // 10)
    bands = []
    if n > 1:
        for start, stop in ((0, tenth), (n - tenth, n)):
            first, last = axis.x(series.times_s[[start, stop - 1]])
            bands.append((float(first), float(last)))
    x, y = line_points(series.times_s, series.brightness, axis)
    line = Line("mean pixel value", COLOURS[0], x, y)
    row = Row("mean pixel value", (line,), _ylim([y]), height=260, bands=tuple(bands))
    key = Key("first and last tenth of the frames (the drift compares them)", BAND_COLOUR, "band")
    return Plot(axis, (row,), (key,))


def motion_plot(series: ImagingSeries, axis: SessionAxis, limit: float) -> Plot:
    """dy, dx and the distance of each sampled frame, with the limit dashed."""
    assert series.motion is not None
    times = series.motion_times_s
    shifts, distance = series.motion.shifts, series.motion.displacement
    lines = [
        Line("dy (down)", COLOURS[0], *line_points(times, shifts[:, 0], axis), dots=5),
        Line("dx (right)", COLOURS[1], *line_points(times, shifts[:, 1], axis), dots=5),
        Line("distance", COLOURS[2], *line_points(times, distance, axis), width=2.5),
    ]
    ends = np.array([axis.ranges()[0][0], axis.ranges()[-1][1]])
    lines.append(Line("limit", LIMIT_COLOUR, ends, np.full(2, float(limit)), dash=True))
    row = Row(
        "displacement (px)", tuple(lines), _ylim([line.y for line in lines] + [np.zeros(1)]),
        height=280, rules=(0.0,),
    )  # fmt: skip
    keys = [Key(line.label, line.colour, "dash" if line.dash else "line") for line in lines]
    return Plot(axis, (row,), tuple(keys))


def timing_plot(timelines: Sequence[DeviceTimeline], axis: SessionAxis) -> Plot:
    """Per device, on one shared axis: the interval before each frame, dropped frames in red
    (the frame after each gap, and a line with the number of frames lost)."""
    rows = []
    for index, timeline in enumerate(timelines):
        colour = COLOURS[index % len(COLOURS)]
        intervals = timeline.intervals_ms
        x, y = line_points(timeline.timestamps_s, intervals, axis)
        after = np.searchsorted(timeline.timestamps_s, timeline.dropped_at_s, "right")
        after = after[after < timeline.n_frames]  # the frame after each gap: its interval
        dots = Line("interval before a frame", colour, x, y, width=0, dots=3)
        dropped = Line(
            "the frame after dropped frames", LIMIT_COLOUR,
            axis.x(timeline.timestamps_s[after]), intervals[after], width=0, dots=7,
        )  # fmt: skip
        marks = tuple(
            (float(axis.x(at)), int(count))
            for at, count in zip(timeline.dropped_at_s, timeline.dropped_counts, strict=True)
        )
        lost = f"{timeline.dropped} dropped frame{'s' if timeline.dropped != 1 else ''}"
        rows.append(
            Row(
                "interval (ms)", (dots, dropped), _ylim([y, dropped.y]), height=200,
                title=f"{timeline.device}: {lost}", marks=marks,
            )
        )  # fmt: skip
    keys = [Key("interval before each frame (a colour per device)", COLOURS[0], "dots")]
    if any(timeline.dropped for timeline in timelines):
        keys += [
            Key("the frame after dropped frames", LIMIT_COLOUR, "dots"),
            Key("dropped frames, the number lost beside", LIMIT_COLOUR, "mark"),
        ]
    return Plot(axis, tuple(rows), tuple(keys))


def orientation_plot(entry: HeadOrientation, axis: SessionAxis) -> Plot:
    """Yaw, pitch and roll (degrees) over time, each line broken where its angle wraps."""
    angles = entry.euler_degrees()
    lines = tuple(
        Line(name, COLOURS[column], *_wrapped(*line_points(entry.times_s, angles[:, column], axis)))
        for column, name in ((2, "yaw"), (1, "pitch"), (0, "roll"))
    )
    row = Row(
        "angle (°)", lines, (-185.0, 185.0), height=280, yticks=(-180, -90, 0, 90, 180),
    )  # fmt: skip
    return Plot(axis, (row,), tuple(Key(line.label, line.colour) for line in lines))


def line_points(
    times_s: np.ndarray, y: np.ndarray, axis: SessionAxis, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Times as the axis shows them and `y`, decimated beyond `max_points` (`decimated`), with
    a break between points a pause apart: no line crosses a pause. Points of unknown time are
    left out."""
    times, y = np.asarray(times_s, np.float64), np.asarray(y, np.float64)
    known = np.isfinite(times)
    if not known.all():
        times, y = times[known], y[known]
    pauses = np.flatnonzero(np.abs(np.diff(times)) > PAUSE_S) + 1
    kept = decimated(y, max_points, pauses)
    return _broken(axis.x(times[kept]), y[kept], np.searchsorted(kept, pauses))


def decimated(
    y: np.ndarray, max_points: int = MAX_POINTS, edges: Sequence[int] | np.ndarray = ()
) -> np.ndarray:
    """The indices of `y` a plot needs: all of them up to `max_points`; beyond, of each of
    `max_points // 3` runs of consecutive points, the first lowest, the first highest and the
    first NaN (a break in the line), in order. Runs also end at `edges` (pauses), and the
    first and last point of the line and either side of each edge are kept: a line decimated
    still spans each stretch to its ends."""
    y = np.asarray(y, np.float64)
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    grid = np.linspace(0, n, max(1, max_points // 3) + 1).round().astype(np.int64)
    starts = np.unique(np.concatenate([grid[:-1], np.asarray(edges, np.int64)]))
    starts = starts[(starts >= 0) & (starts < n)]
    run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    gap = np.isnan(y)
    ends = np.asarray(edges, np.int64)
    kept = [_first(run, gap), np.array([0, n - 1]), ends[(ends > 0) & (ends < n)]]
    kept.append(kept[-1] - 1)
    for pick, fill in ((np.fmin, np.inf), (np.fmax, -np.inf)):
        values = np.where(gap, fill, y)
        extreme = pick.reduceat(values, starts)
        kept.append(_first(run, values == extreme[run]))
    return np.unique(np.concatenate(kept))


def _first(run: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The first index in each run where `where` holds (runs without one give none)."""
    candidates = np.flatnonzero(where)
    _, first = np.unique(run[candidates], return_index=True)
    return candidates[first]


def _wrapped(x: np.ndarray, degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A break where an angle wraps around (from 179° to -179°), so no line spans the plot."""
    return _broken(x, degrees, np.flatnonzero(np.abs(np.diff(degrees)) > 180) + 1)


def _broken(x: np.ndarray, y: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point of y NaN (a null: the line breaks) inserted before each index `where`, its x
    halfway between its neighbours' (uPlot needs every x, ascending)."""
    where = where[(where > 0) & (where < len(x))]
    halfway = (x[where - 1] + x[where]) / 2
    return np.insert(x, where, halfway), np.insert(y, where, np.nan)


def _ylim(values: Sequence[np.ndarray]) -> tuple[float, float]:
    """The range of all finite `values`, 5 % of it added either way (1 when flat)."""
    finite = np.concatenate([np.asarray(v, np.float64).ravel() for v in values])
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = 0.05 * (high - low) or max(abs(high) * 0.05, 1.0)
    return low - pad, high + pad


def _round(value: float, decimals: int) -> float | None:
    return round(float(value), decimals) if np.isfinite(value) else None


def _values(values: np.ndarray, decimals: int) -> list[float | None]:
    """`values` rounded, NaN and infinities as None (JSON null: a break in the line)."""
    rounded = np.round(np.asarray(values, np.float64), decimals)
    out: list[float | None] = rounded.tolist()
    for index in np.flatnonzero(~np.isfinite(rounded)):
        out[index] = None
    return out
