"""The QC page's pictures, drawn by matplotlib (Agg backend, object API) as PNG bytes.

No pyplot: figures are made with `matplotlib.figure.Figure` and drawn by `FigureCanvasAgg`, so
there is no global state, no display is needed, and drawing is safe in threads.

Plots over time share one session axis: the acquisitions of a session are minutes or hours
apart, so the axis is broken at every pause (longer than `PAUSE_S` in all devices' times), one
panel per stretch of recording, each as wide as its duration (at least `MIN_PANEL` of the
figure); lines are broken there too. Beyond `MAX_PANELS` stretches (a long day of short
acquisitions) one panel holds them all, the pauses cut out at dashed lines: the figure's cost
then stays that of one panel, however many acquisitions. Images are saved at exactly their
size.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import DeviceTimeline, HeadOrientation, ImagingSeries

PAUSE_S = 10.0
MIN_PANEL = 0.12
MAX_PANELS = 3
CUT_S = 2.0  # the room a cut pause takes on a one-panel axis, s
WIDTH_IN, DPI = 10.0, 110  # 1100 px wide: the page's width
MARGIN_IN = {"left": 0.9, "right": 0.2, "bottom": 0.75, "top": 0.45}  # tick labels, titles
ROW_GAP_IN = 0.55  # between a figure's rows: the next row's title
COLOURS = ("#1f6f8b", "#e07a1f", "#5a8f29", "#8e44ad", "#c0392b", "#7f8c8d")
LIMIT_COLOUR = "#c0392b"


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

    @property
    def label(self) -> str:
        if self.cut:
            return (
                f"time recorded ({self.unit}): {len(self.spans)} stretches, the pauses between "
                "them cut out at the dashed lines"
            )
        gaps = " (broken at pauses)" if len(self.spans) > 1 else ""
        return f"time in session ({self.unit}){gaps}"


def brightness_png(series: ImagingSeries, axis: SessionAxis) -> bytes:
    """Mean pixel value per frame, the first and last tenth (which the drift compares) shaded."""
    n = len(series.brightness)
    tenth = max(1, n // 10)

    def draw(axes: Any) -> None:
        axes.plot(*_broken(series.times_s, series.brightness, axis), lw=0.8, color=COLOURS[0])
        for start, stop in ((0, tenth), (n - tenth, n)):
            if n > 1:
                first, last = axis.x(series.times_s[[start, stop - 1]])
                axes.axvspan(first, last, color=COLOURS[1], alpha=0.15, linewidth=0)

    figure, rows = _panels(axis, [2.6])
    _draw_row(rows[0], draw, "mean pixel value")
    return _finish(figure, axis)


def motion_png(series: ImagingSeries, axis: SessionAxis, limit: float) -> bytes:
    """dy, dx and the distance of each sampled frame, with the limit dashed."""
    assert series.motion is not None
    times = series.motion_times_s
    shifts, distance = series.motion.shifts, series.motion.displacement

    def draw(axes: Any) -> None:
        axes.axhline(0, color="#999999", linewidth=0.6)
        axes.axhline(limit, color=LIMIT_COLOUR, linestyle="--", linewidth=1, label="limit")
        axes.plot(
            *_broken(times, shifts[:, 0], axis),
            ".-",
            color=COLOURS[0],
            lw=0.8,
            ms=3,
            label="dy (down)",
        )
        axes.plot(
            *_broken(times, shifts[:, 1], axis),
            ".-",
            color=COLOURS[1],
            lw=0.8,
            ms=3,
            label="dx (right)",
        )
        axes.plot(*_broken(times, distance, axis), color=COLOURS[2], lw=1.8, label="distance")

    figure, rows = _panels(axis, [2.9])
    _draw_row(rows[0], draw, "displacement (px)")
    _legend(figure, rows[0][-1])
    return _finish(figure, axis)


def timing_png(timelines: Sequence[DeviceTimeline], axis: SessionAxis) -> bytes:
    """Per device, on one shared axis: the interval before each frame, dropped frames in red."""
    figure, rows = _panels(axis, [2.1] * len(timelines))
    for index, (row, timeline) in enumerate(zip(rows, timelines, strict=True)):
        colour = COLOURS[index % len(COLOURS)]

        def draw(axes: Any, timeline: DeviceTimeline = timeline, colour: str = colour) -> None:
            axes.plot(
                axis.x(timeline.timestamps_s), timeline.intervals_ms, ".", ms=2.5, color=colour
            )
            after = np.searchsorted(timeline.timestamps_s, timeline.dropped_at_s, "right")
            after = after[after < timeline.n_frames]  # the frame after each gap: its interval
            axes.plot(
                axis.x(timeline.timestamps_s[after]),
                timeline.intervals_ms[after],
                "o",
                ms=4,
                color=LIMIT_COLOUR,
            )
            for at, count in zip(timeline.dropped_at_s, timeline.dropped_counts, strict=True):
                x = float(axis.x(at))
                axes.axvline(x, color=LIMIT_COLOUR, linewidth=1.2, alpha=0.8)
                axes.annotate(
                    str(count),
                    (x, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    color=LIMIT_COLOUR,
                    fontsize=9,
                    annotation_clip=True,
                )

        _draw_row(row, draw, "interval (ms)")
        dropped = f"{timeline.dropped} dropped frame{'s' if timeline.dropped != 1 else ''}"
        row[0].set_title(f"{timeline.device}: {dropped}", loc="left", fontsize=11)
    return _finish(figure, axis)


def orientation_png(entry: HeadOrientation, axis: SessionAxis) -> bytes:
    """Yaw, pitch and roll (degrees) over time."""
    angles = entry.euler_degrees()
    times = entry.times_s

    def draw(axes: Any) -> None:
        for column, name in ((2, "yaw"), (1, "pitch"), (0, "roll")):
            axes.plot(
                *_wrapped(*_broken(times, angles[:, column], axis)),
                lw=0.9,
                label=name,
                color=COLOURS[column],
            )
        axes.set_ylim(-185, 185)
        axes.set_yticks([-180, -90, 0, 90, 180])

    figure, rows = _panels(axis, [2.9])
    _draw_row(rows[0], draw, "angle (°)")
    _legend(figure, rows[0][-1])
    return _finish(figure, axis)


def photo_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """A behaviour-camera frame (RGB or gray, uint8) as a JPEG of exactly its size: a photo,
    which PNG would keep at ~10x the bytes (the page carries one per camera and acquisition)."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    pixels = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    imsave(buffer, pixels, format="jpeg", pil_kwargs={"quality": quality})
    return buffer.getvalue()


def image_png(image: np.ndarray, stretch: bool = True) -> bytes:
    """`image` as a PNG of exactly its size: gray (contrast-stretched from the 0.5th to the
    99.5th percentile, or over its dtype's range) or RGB as it is."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    if image.ndim == 3:
        imsave(buffer, np.ascontiguousarray(image[..., :3], dtype=np.uint8), format="png")
        return buffer.getvalue()
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if stretch and len(finite):
        low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    else:
        low, high = 0.0, float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    imsave(buffer, values, cmap="gray", vmin=low, vmax=max(high, low + 1e-9), format="png")
    return buffer.getvalue()


def _panels(axis: SessionAxis, heights: Sequence[float]) -> tuple[Any, list[list[Any]]]:
    """A figure with one row per height (inches) and one column per stretch of recording."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = axis.panels()
    durations = np.array([max(b - a, 1e-3) for a, b in panels])
    widths = np.maximum(durations / durations.sum(), MIN_PANEL)
    height = MARGIN_IN["bottom"] + MARGIN_IN["top"] + sum(heights) + ROW_GAP_IN * (len(heights) - 1)
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    # Fixed margins, not a layout engine: the constrained layout drew each figure twice and
    # took half of the page's time; these panels' labels always fit these margins.
    figure.subplots_adjust(
        left=MARGIN_IN["left"] / WIDTH_IN,
        right=1 - MARGIN_IN["right"] / WIDTH_IN,
        bottom=MARGIN_IN["bottom"] / height,
        top=1 - MARGIN_IN["top"] / height,
        wspace=0.03,
        hspace=ROW_GAP_IN / (sum(heights) / len(heights)),
    )
    grid = figure.subplots(
        len(heights),
        len(panels),
        sharex="col",
        sharey="row",
        squeeze=False,
        gridspec_kw={"width_ratios": widths, "height_ratios": list(heights)},
    )
    for column, (first, last) in enumerate(panels):
        pad = max(0.02 * (last - first), 0.5 * axis.scale)
        for axes in grid[:, column]:
            axes.set_xlim(first - pad, last + pad)
            bins = max(2, int(round(9 * widths[column] / widths.sum())))
            axes.xaxis.set_major_locator(MaxNLocator(nbins=bins))
            _tidy(axes, first=column == 0)
            for cut in axis.offsets[1:] if axis.cut else ():
                x = (cut - CUT_S / 2) * axis.scale
                axes.axvline(x, color="#888888", linestyle="--", linewidth=0.8)
    return figure, [list(row) for row in grid]


def _draw_row(row: list[Any], draw: Callable[[Any], None], ylabel: str) -> None:
    """The same drawing in every panel of a row (each shows its stretch), the label once."""
    for axes in row:
        draw(axes)
    row[0].set_ylabel(ylabel)


def _tidy(axes: Any, first: bool) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    if not first:  # a later stretch: the break is a gap, not a second y axis
        axes.spines["left"].set_visible(False)
        axes.tick_params(axis="y", left=False, labelleft=False)
        axes.plot(
            [0, 0], [-0.02, 0.02], transform=axes.transAxes, color="#444444", clip_on=False, lw=1
        )
    axes.grid(True, color="#e6e9ec", linewidth=0.6)
    axes.set_axisbelow(True)


def _legend(figure: Any, axes: Any) -> None:
    handles, labels = axes.get_legend_handles_labels()
    right = 1 - MARGIN_IN["right"] / WIDTH_IN
    figure.legend(
        handles, labels, loc="upper right", bbox_to_anchor=(right, 1.0), ncols=len(labels),
        frameon=False,
    )  # fmt: skip


def _finish(figure: Any, axis: SessionAxis) -> bytes:
    figure.supxlabel(axis.label, fontsize=10, y=0.1 / figure.get_figheight(), va="bottom")
    return _png(figure)


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    # A figure's artists refer to each other (and the canvas holds its pixels): without these
    # cycles broken the figure waits for the garbage collector, and the page's figures add up.
    figure.clear()
    canvas.__dict__.pop("renderer", None)
    return buffer.getvalue()


def _broken(times_s: np.ndarray, y: np.ndarray, axis: SessionAxis) -> tuple[np.ndarray, np.ndarray]:
    """Times as the axis shows them and `y`, with NaN between points a pause apart: no line
    crosses a pause."""
    times, y = np.asarray(times_s, np.float64), np.asarray(y, np.float64)
    cuts = np.flatnonzero(np.abs(np.diff(times)) > PAUSE_S) + 1
    return np.insert(axis.x(times), cuts, np.nan), np.insert(y, cuts, np.nan)


def _wrapped(x: np.ndarray, degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN where an angle wraps around (from 179° to -179°), so no line spans the plot."""
    cuts = np.flatnonzero(np.abs(np.diff(degrees)) > 180) + 1
    return np.insert(x, cuts, np.nan), np.insert(degrees, cuts, np.nan)
