"""The QC page's pictures: plots as inline SVG drawn here, images as PNG or JPEG bytes.

No plotting library: matplotlib alone took ~30 MB of the converter's memory to import and
most of the page's time to draw; an SVG is a few hundred lines and points the browser draws,
with its text as sharp as the page's. Points beyond what the page's pixels show are merged:
a line keeps, per pixel column, its first, lowest, highest and last value; dots are kept
once per pixel; so a plot's size is bounded by its width, however many frames it shows.

Plots over time share one session axis: the acquisitions of a session are minutes or hours
apart, so the axis is broken at every pause (longer than `PAUSE_S` in all devices' times), one
panel per stretch of recording, each as wide as its duration (at least `MIN_PANEL` of the
figure); lines are broken there too. Beyond `MAX_PANELS` stretches (a long day of short
acquisitions) one panel holds them all, the pauses cut out at dashed lines. Images are saved
at exactly their size.
"""

from __future__ import annotations

import html
import io
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .model import DeviceTimeline, HeadOrientation, ImagingSeries

PAUSE_S = 10.0
MIN_PANEL = 0.12
MAX_PANELS = 3
CUT_S = 2.0  # the room a cut pause takes on a one-panel axis, s
WIDTH_PX = 1100  # the page's width
MARGIN_PX = {"left": 100, "right": 22, "bottom": 80, "top": 50}  # tick labels, titles
ROW_GAP_PX = 60  # between a figure's rows: the next row's title
PANEL_GAP_PX = 14  # between the stretches of a row
FONT_PX, SMALL_FONT_PX = 15, 13
GRID_COLOUR, AXIS_COLOUR = "#e6e9ec", "#444444"
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


def brightness_svg(series: ImagingSeries, axis: SessionAxis) -> str:
    """Mean pixel value per frame, the first and last tenth (which the drift compares) shaded."""
    n = len(series.brightness)
    tenth = max(1, n // 10)
    row = _Row(286, "mean pixel value")
    row.line(*_broken(series.times_s, series.brightness, axis), COLOURS[0], 0.8)
    for start, stop in ((0, tenth), (n - tenth, n)):
        if n > 1:
            first, last = axis.x(series.times_s[[start, stop - 1]])
            row.spans.append((float(first), float(last), COLOURS[1], 0.15))
    return _Figure(axis, [row]).svg(f"Brightness of {series.name}")


def motion_svg(series: ImagingSeries, axis: SessionAxis, limit: float) -> str:
    """dy, dx and the distance of each sampled frame, with the limit dashed."""
    assert series.motion is not None
    times = series.motion_times_s
    shifts, distance = series.motion.shifts, series.motion.displacement
    row = _Row(319, "displacement (px)")
    row.hline(0.0, "#999999", 0.6)
    row.hline(limit, LIMIT_COLOUR, 1.0, dashed=True, label="limit")
    row.line(*_broken(times, shifts[:, 0], axis), COLOURS[0], 0.8, dots=3, label="dy (down)")
    row.line(*_broken(times, shifts[:, 1], axis), COLOURS[1], 0.8, dots=3, label="dx (right)")
    row.line(*_broken(times, distance, axis), COLOURS[2], 1.8, label="distance")
    return _Figure(axis, [row], legend=True).svg(f"Motion of {series.name}")


def timing_svg(timelines: Sequence[DeviceTimeline], axis: SessionAxis) -> str:
    """Per device, on one shared axis: the interval before each frame, dropped frames in red."""
    rows = []
    for index, timeline in enumerate(timelines):
        dropped = f"{timeline.dropped} dropped frame{'s' if timeline.dropped != 1 else ''}"
        row = _Row(231, "interval (ms)", title=f"{timeline.device}: {dropped}")
        colour = COLOURS[index % len(COLOURS)]
        row.line(axis.x(timeline.timestamps_s), timeline.intervals_ms, colour, 0, dots=2.5)
        after = np.searchsorted(timeline.timestamps_s, timeline.dropped_at_s, "right")
        after = after[after < timeline.n_frames]  # the frame after each gap: its interval
        row.line(
            axis.x(timeline.timestamps_s[after]), timeline.intervals_ms[after], LIMIT_COLOUR, 0,
            dots=4,
        )  # fmt: skip
        for at, count in zip(timeline.dropped_at_s, timeline.dropped_counts, strict=True):
            row.vlines.append((float(axis.x(at)), str(count)))
        rows.append(row)
    return _Figure(axis, rows).svg("Frame intervals")


def orientation_svg(entry: HeadOrientation, axis: SessionAxis) -> str:
    """Yaw, pitch and roll (degrees) over time."""
    angles = entry.euler_degrees()
    row = _Row(319, "angle (°)", limits=(-185.0, 185.0), ticks=(-180, -90, 0, 90, 180))
    for column, name in ((2, "yaw"), (1, "pitch"), (0, "roll")):
        x, y = _wrapped(*_broken(entry.times_s, angles[:, column], axis))
        row.line(x, y, COLOURS[column], 0.9, label=name)
    return _Figure(axis, [row], legend=True).svg(f"Head orientation of {entry.device}")


def photo_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """A behaviour-camera frame (RGB or gray, uint8) as a JPEG of exactly its size: a photo,
    which PNG would keep at ~10x the bytes (the page carries one per camera and acquisition)."""
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.ascontiguousarray(image if image.ndim == 2 else image[..., :3], dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def image_png(image: np.ndarray, stretch: bool = True) -> bytes:
    """`image` as a PNG of exactly its size: gray (contrast-stretched from the 0.5th to the
    99.5th percentile, or over its dtype's range) or RGB as it is."""
    if image.ndim == 3:
        return _png(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    values = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if stretch and len(finite):
        low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    else:
        low, high = 0.0, float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    scaled = values - low  # a new array: `values` may be the image itself
    scaled *= 255 / max(high - low, 1e-9)
    np.nan_to_num(scaled, copy=False)
    return _png(np.rint(np.clip(scaled, 0, 255, out=scaled), out=scaled).astype(np.uint8))


def _png(pixels: np.ndarray) -> bytes:
    """uint8 gray (h, w) or RGB (h, w, 3) pixels as a PNG (zlib, no filter: a few lines here
    instead of an imaging library's import)."""
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + pixels[0].size), np.uint8)  # each row's filter byte: none
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if pixels.ndim == 2 else 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    idat = zlib.compress(rows.tobytes(), 6)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# Drawing: a figure of rows (one y axis each) by panels (one per stretch of recording)


@dataclass
class _Mark:
    x: np.ndarray
    y: np.ndarray
    colour: str
    width: float  # line width, points (0: no line)
    dots: float  # dot diameter, points (0: no dots)
    dashed: bool = False
    label: str = ""
    across: bool = False  # a horizontal line through every panel, at y[0]


@dataclass
class _Row:
    """One row of a figure: what it shows, in data units; its y axis is shared by its panels."""

    height: float  # px
    ylabel: str
    title: str = ""
    limits: tuple[float, float] | None = None  # None: the data's, padded
    ticks: Sequence[float] | None = None
    marks: list[_Mark] = field(default_factory=list)
    spans: list[tuple[float, float, str, float]] = field(default_factory=list)  # x0, x1, fill
    vlines: list[tuple[float, str]] = field(default_factory=list)  # dropped frames: x, count

    def line(
        self, x: np.ndarray, y: np.ndarray, colour: str, width: float, *, dots: float = 0,
        label: str = "",
    ) -> None:  # fmt: skip
        self.marks.append(_Mark(np.asarray(x, float), np.asarray(y, float), colour, width, dots,
                                label=label))  # fmt: skip

    def hline(
        self, y: float, colour: str, width: float, *, dashed: bool = False, label: str = ""
    ) -> None:
        """A horizontal line across every panel (counted in the y range, as the limit must be)."""
        self.marks.append(
            _Mark(np.zeros(1), np.array([y]), colour, width, 0, dashed, label, across=True)
        )

    def y_range(self) -> tuple[float, float]:
        if self.limits is not None:
            return self.limits
        finite = [m.y[np.isfinite(m.y)] for m in self.marks]
        values = np.concatenate(finite) if finite else np.zeros(0)
        if not len(values):
            return (0.0, 1.0)
        low, high = float(values.min()), float(values.max())
        pad = 0.05 * (high - low) if high > low else max(abs(low) * 0.05, 0.5)
        return (low - pad, high + pad)


_PT = 110 / 72  # px per point, as the page's plots were drawn at 110 dpi


@dataclass(frozen=True)
class _Scale:
    """A panel's place in the figure (px) and the data range it shows."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    low: float
    high: float

    def x(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Data x -> px from the panel's left."""
        return (np.asarray(values, float) - self.x0) * (self.width / (self.x1 - self.x0))

    def y(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Data y -> px from the panel's top."""
        return (self.high - np.asarray(values, float)) * (self.height / (self.high - self.low))


class _Figure:
    """Rows stacked, each split into the axis' panels; `svg()` the markup."""

    def __init__(self, axis: SessionAxis, rows: Sequence[_Row], legend: bool = False) -> None:
        self.axis, self.rows, self.legend = axis, list(rows), legend
        panels = axis.panels()
        durations = np.array([max(b - a, 1e-3) for a, b in panels])
        widths = np.maximum(durations / durations.sum(), MIN_PANEL)
        inner = WIDTH_PX - MARGIN_PX["left"] - MARGIN_PX["right"]
        room = inner - PANEL_GAP_PX * (len(panels) - 1)
        lefts, self.columns = float(MARGIN_PX["left"]), []
        for (first, last), share in zip(panels, widths / widths.sum(), strict=True):
            pad = max(0.02 * (last - first), 0.5 * axis.scale)
            bins = max(2, int(round(9 * share)))
            self.columns.append((lefts, room * share, first - pad, last + pad, bins))
            lefts += room * share + PANEL_GAP_PX
        gaps = ROW_GAP_PX * (len(self.rows) - 1)
        self.height = MARGIN_PX["top"] + MARGIN_PX["bottom"] + sum(r.height for r in rows) + gaps

    def svg(self, alt: str) -> str:
        parts = [
            f'<svg class="plot" role="img" '
            f'viewBox="0 0 {WIDTH_PX} {self.height:.0f}" width="{WIDTH_PX}" '
            f'height="{self.height:.0f}" font-family="DejaVu Sans, Arial, sans-serif" '
            f'font-size="{FONT_PX}" fill="#222"><title>{_e(alt)}</title>'
            f'<rect width="100%" height="100%" fill="white"/>'
        ]
        top = float(MARGIN_PX["top"])
        for row in self.rows:
            parts.append(self._row(row, top))
            top += row.height + ROW_GAP_PX
        bottom = self.height - 14
        parts.append(f'<text x="{WIDTH_PX / 2:.0f}" y="{bottom:.0f}" text-anchor="middle">'
                     f"{_e(self.axis.label)}</text>")  # fmt: skip
        if self.legend:
            parts.append(self._legend())
        parts.append("</svg>")
        return "".join(parts)

    def _row(self, row: _Row, top: float) -> str:
        low, high = row.y_range()
        yticks = list(row.ticks) if row.ticks is not None else _ticks(low, high, 6)
        out = []
        if row.title:
            out.append(f'<text x="{MARGIN_PX["left"]}" y="{top - 10:.0f}" font-size="17">'
                       f"{_e(row.title)}</text>")  # fmt: skip
        middle = top + row.height / 2
        out.append(f'<text transform="translate(26 {middle:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{_e(row.ylabel)}</text>')  # fmt: skip
        for index, (left, width, x0, x1, bins) in enumerate(self.columns):
            scale = _Scale(left, top, width, row.height, x0, x1, low, high)
            out.append(self._panel(row, scale, _ticks(x0, x1, bins), yticks, index == 0))
        return "".join(out)

    def _panel(
        self, row: _Row, scale: _Scale, xticks: list[float], yticks: list[float], first: bool
    ) -> str:
        """One panel: its own `<svg>` (which clips what it holds), then its axes outside."""
        width, height = scale.width, scale.height
        out = [f'<svg x="{scale.left:.1f}" y="{scale.top:.1f}" width="{width:.1f}" '
               f'height="{height:.1f}">']  # fmt: skip
        out.append(_grid(scale.x(xticks), scale.y(yticks), width, height))
        for first_x, last_x, colour, alpha in row.spans:
            a, b = scale.x([first_x, last_x])
            out.append(f'<rect x="{a:.1f}" width="{max(b - a, 0.5):.1f}" height="{height}" '
                       f'fill="{colour}" fill-opacity="{alpha}"/>')  # fmt: skip
        cuts = self.axis.offsets[1:] if self.axis.cut else np.zeros(0)
        for x in scale.x([(cut - CUT_S / 2) * self.axis.scale for cut in cuts]):
            out.append(f'<path d="M{x:.1f} 0V{height}" stroke="#888888" stroke-width="1.2" '
                       'stroke-dasharray="5 3"/>')  # fmt: skip
        for at, (_, text) in zip(scale.x([x for x, _ in row.vlines]), row.vlines, strict=True):
            if 0 <= at <= width:
                out.append(f'<path d="M{at:.1f} 0V{height}" stroke="{LIMIT_COLOUR}" '
                           f'stroke-width="1.8" stroke-opacity="0.8"/><text x="{at + 4:.1f}" '
                           f'y="17" fill="{LIMIT_COLOUR}" font-size="{SMALL_FONT_PX}">'
                           f"{_e(text)}</text>")  # fmt: skip
        out.extend(_mark(mark, scale) for mark in row.marks)
        out.append("</svg>")
        out.append(_frame(scale.left, scale.top, width, height, first))
        bottom = scale.top + height
        for tick, x in zip(xticks, scale.left + scale.x(xticks), strict=True):
            out.append(f'<path d="M{x:.1f} {bottom:.1f}v5" stroke="{AXIS_COLOUR}"/><text '
                       f'x="{x:.1f}" y="{bottom + 22:.1f}" text-anchor="middle">'
                       f"{_number(tick, xticks)}</text>")  # fmt: skip
        for tick, y in zip(yticks, scale.top + scale.y(yticks), strict=True) if first else ():
            out.append(f'<path d="M{scale.left:.1f} {y:.1f}h-5" stroke="{AXIS_COLOUR}"/><text '
                       f'x="{scale.left - 8:.1f}" y="{y + 5:.1f}" text-anchor="end">'
                       f"{_number(tick, yticks)}</text>")  # fmt: skip
        return "".join(out)

    def _legend(self) -> str:
        """The labelled marks of the figure, in one line at its top right."""
        entries = [m for row in self.rows for m in row.marks if m.label]
        out, right = [], float(WIDTH_PX - MARGIN_PX["right"])
        for mark in reversed(entries):
            right -= len(mark.label) * FONT_PX * 0.6
            out.append(f'<text x="{right:.0f}" y="24">{_e(mark.label)}</text>')
            right -= 34
            dash = ' stroke-dasharray="5 3"' if mark.dashed else ""
            width = max(mark.width, 0.8) * _PT
            out.append(f'<path d="M{right:.0f} 19h26" stroke="{mark.colour}" '
                       f'stroke-width="{width:.1f}"{dash}/>')  # fmt: skip
            if mark.dots:
                out.append(_dots(np.array([right + 13.0]), np.array([19.0]), mark))
            right -= 20
        return "".join(out)


def _grid(xs: np.ndarray, ys: np.ndarray, width: float, height: float) -> str:
    path = "".join(f"M{x:.1f} 0V{height:.1f}" for x in xs) + "".join(
        f"M0 {y:.1f}H{width:.1f}" for y in ys
    )
    return f'<path d="{path}" stroke="{GRID_COLOUR}" stroke-width="0.9"/>'


def _frame(left: float, top: float, width: float, height: float, first: bool) -> str:
    """The bottom spine, and the left one in the first panel; later panels get a break mark."""
    bottom = top + height
    path = f"M{left:.1f} {bottom:.1f}h{width:.1f}"
    path += f"M{left:.1f} {top:.1f}V{bottom:.1f}" if first else f"M{left:.1f} {bottom - 5:.1f}v10"
    return f'<path d="{path}" stroke="{AXIS_COLOUR}" stroke-width="1.2" fill="none"/>'


def _mark(mark: _Mark, scale: _Scale) -> str:
    """A mark's line and dots within one panel, merged to what its pixels can show."""
    if mark.across:
        y = scale.y(mark.y[:1])[0]
        dash = ' stroke-dasharray="5 3"' if mark.dashed else ""
        return (f'<path d="M0 {y:.1f}H{scale.width:.1f}" stroke="{mark.colour}" '
                f'stroke-width="{mark.width * _PT:.2f}"{dash}/>')  # fmt: skip
    inside = np.flatnonzero((mark.x >= scale.x0) & (mark.x <= scale.x1))
    if not len(inside):
        return ""
    keep = slice(max(inside[0] - 1, 0), inside[-1] + 2)  # one point beyond: lines reach the edge
    x, y = scale.x(mark.x[keep]), scale.y(mark.y[keep])
    out = ""
    if mark.width:
        out += (f'<path d="{_polyline(x, y)}" fill="none" stroke="{mark.colour}" '
                f'stroke-width="{mark.width * _PT:.2f}" stroke-linejoin="round"/>')  # fmt: skip
    if mark.dots:
        out += _dots(x, y, mark)
    return out


def _polyline(x: np.ndarray, y: np.ndarray) -> str:
    """Path data of the line through (x, y) px, broken at NaN; per pixel column only the first,
    lowest, highest and last point of a run are kept (what the column shows)."""
    finite = np.isfinite(x) & np.isfinite(y)
    breaks = np.flatnonzero(np.diff(finite.astype(np.int8)) != 0) + 1
    parts = []
    for start, stop in zip([0, *breaks], [*breaks, len(x)], strict=True):
        if not finite[start]:
            continue
        xs, ys = _thinned(x[start:stop], y[start:stop])
        pairs = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs.tolist(), ys.tolist(), strict=True))
        parts.append(f"M{pairs}")
    return "".join(parts)


def _thinned(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    column = np.floor(x)
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    if 4 * len(starts) >= len(x):
        return x, y
    ends = np.r_[starts[1:], len(x)] - 1
    low, high = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    xs = np.stack([x[starts], x[starts], x[ends], x[ends]], axis=1).ravel()
    ys = np.stack([y[starts], low, high, y[ends]], axis=1).ravel()
    return xs, ys


def _dots(x: np.ndarray, y: np.ndarray, mark: _Mark) -> str:
    """Round dots at (x, y) px, one per half pixel at most: each a zero-length round-capped
    segment of one path."""
    finite = np.isfinite(x) & np.isfinite(y)
    points = np.unique(np.round(np.stack([x[finite], y[finite]], axis=1) * 2), axis=0) / 2
    path = "".join(f"M{a:g} {b:g}h0" for a, b in points.tolist())
    return (f'<path d="{path}" stroke="{mark.colour}" stroke-width="{mark.dots * _PT:.1f}" '
            f'stroke-linecap="round" fill="none"/>')  # fmt: skip


def _ticks(low: float, high: float, most: int) -> list[float]:
    """Round numbers within [low, high], at most `most` + 1 of them (1, 2, 2.5, 5 x 10^k apart)."""
    span = high - low
    if not span > 0 or not math.isfinite(span):
        return [low] if math.isfinite(low) else []
    magnitude = 10 ** math.floor(math.log10(span / most))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= most)
    first = math.ceil(low / step - 1e-9)
    return [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]


def _number(value: float, ticks: Sequence[float]) -> str:
    """A tick label with as many decimals as its ticks' step needs (a minus sign, not a dash)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next(d for d in range(12) if abs(round(step, d) - step) <= 1e-9 * step or d == 11)
    text = f"{value + 0.0:.{decimals}f}"
    return ("0" if float(text) == 0 and decimals == 0 else text).replace("-", "−")


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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
