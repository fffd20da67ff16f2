"""A session's QC page: one self-contained HTML file a person scrolls through.

Like the visual reports of fMRIPrep and MRIQC: a summary with a verdict per threshold on top,
then one section per question (is the field of view in focus, did the light change, did the
brain move, were frames lost, how did the head move, what did the cameras see, with which
settings, is the file valid). Everything is inline, so the page opens from a shared drive or a
mail (file://) with no server and fetches nothing: images as base64 data (encoded by Pillow,
`images.py`), the CSS in the head, and the scripts that draw the time plots in the browser:
uPlot (vendored unmodified in `vendor/`) and its glue (`page.js`), each plot's data beside it
as JSON (`plots.py`; `<` escaped, so no value can end its script). Without JavaScript the
tables and images are all there and a note says the plots need it. Images are shown at full
resolution, shrunk to the page's width by CSS only. Every text is escaped.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs.atomic import write_bytes
from .images import image_png, photo_jpeg
from .model import (
    AcquisitionSettings,
    CameraFrame,
    DeviceTimeline,
    HeadOrientation,
    ImagingSeries,
    SessionQC,
    Verdict,
)
from .plots import (
    Plot,
    SessionAxis,
    brightness_plot,
    motion_plot,
    orientation_plot,
    timing_plot,
)

SECTIONS = (
    ("summary", "Summary"),
    ("field-of-view", "Field of view"),
    ("brightness", "Brightness over time"),
    ("motion", "Motion"),
    ("timing", "Frame timing and dropped frames"),
    ("head-orientation", "Head orientation"),
    ("behaviour", "Behaviour cameras"),
    ("settings", "Settings per acquisition"),
    ("validation", "Validation"),
)
SMALL_IMAGE_PX = 360  # narrower images are shown enlarged (whole multiples, pixels kept sharp)
_STYLE = """
:root { --ink: #1d2630; --muted: #5b6873; --line: #d9dee3; --ok: #2e7d32; --bad: #c62828;
        --unknown: #6d7a84; --paper: #ffffff; --page: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
       font: 16px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 20px 64px; }
header h1 { margin: 0 0 4px; font-size: 28px; }
header p { margin: 2px 0; color: var(--muted); overflow-wrap: anywhere; }
nav { margin: 16px 0; font-size: 15px; }
nav a { margin-right: 14px; color: #1f6f8b; text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
          padding: 16px 22px 20px; margin: 18px 0; }
h2 { margin: 0 0 12px; font-size: 22px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { margin: 20px 0 8px; font-size: 18px; }
h3 small, figcaption, .note { color: var(--muted); font-weight: normal; font-size: 14px; }
img { max-width: 100%; height: auto; display: block; }
figure { margin: 8px 0 16px; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; }
.pair figure { flex: 1 1 320px; min-width: 0; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 15px; }
th, td { text-align: left; padding: 5px 12px 5px 0; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { font-weight: 600; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-size: 19px; font-weight: 600; padding: 10px 14px; border-radius: 6px;
           margin: 0 0 12px; }
.verdict.ok { background: #e8f5e9; color: var(--ok); }
.verdict.bad { background: #ffebee; color: var(--bad); }
.badge { display: inline-block; min-width: 86px; text-align: center; padding: 1px 8px;
         border-radius: 10px; font-size: 13px; font-weight: 600; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
.badge.unknown { background: var(--unknown); }
ul.problems { margin: 6px 0; padding-left: 22px; }
ul.problems li { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px; }
.scroll { overflow-x: auto; }
.plot { margin: 8px 0 16px; break-inside: avoid; }
.plot-title { font-size: 15px; font-weight: 600; margin: 10px 0 2px; }
.plot-row { display: flex; gap: 8px; overflow: hidden; }
.plot-x { text-align: center; margin-top: 2px; }
.legend { display: flex; flex-wrap: wrap; justify-content: flex-end; gap: 2px 18px;
          font-size: 13px; color: var(--muted); margin: 4px 0; }
.legend i { display: inline-block; vertical-align: middle; width: 22px; height: 0;
            margin: 0 6px 2px 0; border-top: 2px solid var(--c); }
.legend i.dash { border-top-style: dashed; }
.legend i.dots { width: 8px; height: 8px; border: 0; border-radius: 50%; background: var(--c); }
.legend i.band { height: 12px; border: 0; background: var(--c); }
.legend i.mark { width: 0; height: 14px; border: 0; border-left: 2px solid var(--c); }
@page { size: 330mm 467mm; margin: 10mm; }  /* the screen's 1160 px fit: the plots as drawn */
@media print { body { background: #fff; } section { break-inside: avoid-page; } }
"""
UPLOT_VERSION = "1.6.32"  # vendor/README.md: where it comes from, how to update it


def render_page(qc: SessionQC) -> str:
    """The whole page for `qc` as one HTML document."""
    axis = SessionAxis.of(
        [t.timestamps_s for t in qc.timelines]
        + [s.times_s for s in qc.imaging]
        + [o.times_s for o in qc.orientation]
    )
    body = [
        _header(qc),
        _nav(),
        _summary(qc),
        _field_of_view(qc.imaging),
        _brightness(qc.imaging, axis),
        _motion(qc, axis),
        _timing(qc.timelines, axis),
        _orientation(qc.orientation, axis),
        _behaviour(qc.camera_frames),
        _settings(qc.settings),
        _validation(qc),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>QC: {_e(qc.session)}</title>\n"
        f"<style>{_STYLE}{_inlined('vendor/uPlot.min.css')}</style>\n</head>\n"
        f"<body>\n<main>\n{''.join(body)}</main>\n{_scripts()}</body>\n</html>\n"
    )


def write_page(qc: SessionQC, path: Path, *, overwrite: bool = False) -> Path:
    """Write the page to `path` atomically; an existing file is replaced only with
    `overwrite=True` (else `OutputExistsError`, as for every output)."""
    return write_bytes(Path(path), render_page(qc).encode("utf-8"), overwrite=overwrite)


# Sections


def _header(qc: SessionQC) -> str:
    made_by = f"<p>Made by {_e(qc.made_by)}</p>" if qc.made_by else ""
    return (
        f"<header>\n<h1>Quality report: {_e(qc.session)}</h1>\n"
        f"<p>NWB file: {_e(qc.nwb_file)}</p>\n{made_by}</header>\n"
    )


def _nav() -> str:
    links = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
    missing = (
        '<noscript><p class="note">The plots over time are drawn by JavaScript, which is off '
        "here: turn it on to see them (the tables and images need none).</p></noscript>"
    )
    return f"<nav>{links}</nav>\n{missing}\n"


def _summary(qc: SessionQC) -> str:
    verdicts = qc.verdicts()
    beyond = [v for v in verdicts if v.passed is False]
    invalid = qc.validation is not None and not qc.validation.passed
    if not beyond and not invalid:
        headline = '<p class="verdict ok">Looks good: every number is within its limit'
        headline += " and the file is valid.</p>" if qc.validation else ".</p>"
    else:
        reasons = [f"{v.label.lower()} beyond the limit" for v in beyond]
        reasons += ["the file failed validation"] if invalid else []
        headline = f'<p class="verdict bad">Look closer: {_e("; ".join(reasons))}.</p>'
    duration = qc.duration_s
    rows = [
        ("Imaging frames", f"{qc.frames:,}", ""),
        ("Duration", _duration(duration) if duration is not None else "unknown", ""),
    ]
    table = "".join(
        f"<tr><th>{_e(label)}</th><td>{_e(value)}</td><td>{note}</td></tr>"
        for label, value, note in rows
    )
    table += "".join(_verdict_row(verdict, qc) for verdict in verdicts)
    table += _validation_row(qc)
    return _section("summary", f"{headline}\n<table>{table}</table>\n")


def _verdict_row(verdict: Verdict, qc: SessionQC) -> str:
    value = verdict.describe()
    measured = [t for t in qc.timelines if t.dropped_percent is not None]
    if verdict.key == "dropped_percent" and measured:
        worst = max(measured, key=lambda t: t.dropped_percent or 0.0)
        expected = worst.n_frames + worst.dropped
        value = (
            f"{value}; worst device {worst.device} ({worst.dropped:,} of {expected:,}), "
            f"{qc.dropped_frames:,} in all devices"
        )
    status = {True: ("ok", "ok"), False: ("bad", "check"), None: ("unknown", "not measured")}
    css, word = status[verdict.passed]
    return (
        f"<tr><th>{_e(verdict.label)}</th><td>{_e(value)}</td>"
        f'<td><span class="badge {css}">{word}</span></td></tr>'
    )


def _validation_row(qc: SessionQC) -> str:
    if qc.validation is None:
        return '<tr><th>Validation</th><td>not run</td><td><span class="badge unknown">not run</span></td></tr>'  # noqa: E501
    valid = qc.validation.passed
    problems = len(qc.validation.problems)
    text = "passed" if valid else f"failed ({problems} problem{'s' if problems != 1 else ''})"
    css, word = ("ok", "ok") if valid else ("bad", "check")
    return (
        f"<tr><th>Validation</th><td>{_e(text)}</td>"
        f'<td><span class="badge {css}">{word}</span></td></tr>'
    )


def _field_of_view(imaging: Sequence[ImagingSeries]) -> str:
    if not imaging:
        return _section("field-of-view", _none("No imaging series."))
    parts = [
        '<p class="note">At full resolution; contrast stretched from the 0.5th to the 99.5th '
        "percentile of each image. The max projection shows every cell that lit up once; a "
        "blurred mean projection means the focus or the brain moved.</p>"
    ]
    for series in imaging:
        height, width = series.mean_projection.shape[:2]
        figures = "".join(
            f"<figure>{_picture(image, f'{title} of {series.name}')}"
            f"<figcaption>{title}, {width} × {height} px</figcaption></figure>"
            for title, image in (
                ("Mean projection", series.mean_projection),
                ("Max projection", series.max_projection),
            )
        )
        parts.append(f'{_series_heading(series)}<div class="pair">{figures}</div>')
    return _section("field-of-view", "\n".join(parts))


def _brightness(imaging: Sequence[ImagingSeries], axis: SessionAxis) -> str:
    if not imaging:
        return _section("brightness", _none("No imaging series."))
    parts = [
        '<p class="note">Mean pixel value per frame. A sudden drop to near zero is the LED '
        "going off; a slow decline is bleaching; a step is a change of focus or LED power. "
        "Drift compares the last tenth of the frames with the first.</p>"
    ]
    for series in imaging:
        drift = series.brightness_drift_percent
        note = f"drift {drift:+.1f} %" if drift is not None else "drift not measured"
        parts.append(
            f"{_series_heading(series, note)}"
            f"{_plot(brightness_plot(series, axis), f'Brightness of {series.name}')}"
        )
    return _section("brightness", "\n".join(parts))


def _motion(qc: SessionQC, axis: SessionAxis) -> str:
    estimated = [s for s in qc.imaging if s.motion is not None and len(s.motion.indices)]
    if not estimated:
        return _section("motion", _none("No motion estimate."))
    parts = [
        '<p class="note">Rigid displacement of each sampled frame from the mean of the sample '
        "(scikit-image phase cross-correlation), in full-resolution pixels; the dashed line is "
        f"the limit ({qc.thresholds.max_motion_px:g} px).</p>"
    ]
    for series in estimated:
        assert series.motion is not None
        largest = series.max_motion_px
        note = f"{len(series.motion.indices)} frames sampled, largest {largest:.1f} px"
        plot = motion_plot(series, axis, qc.thresholds.max_motion_px)
        parts.append(f"{_series_heading(series, note)}{_plot(plot, f'Motion of {series.name}')}")
    return _section("motion", "\n".join(parts))


def _timing(timelines: Sequence[DeviceTimeline], axis: SessionAxis) -> str:
    if not timelines:
        return _section("timing", _none("No timestamps."))
    header = (
        "<tr><th>Device</th><th>Frames</th><th>Rate</th><th>Median interval</th>"
        "<th>Dropped</th><th>Duration</th></tr>"
    )
    rows = []
    for timeline in timelines:
        rate, median = timeline.rate_hz, timeline.median_interval_ms
        percent = timeline.dropped_percent
        dropped = f"{timeline.dropped:,}" + (f" ({percent:.2f} %)" if percent is not None else "")
        cells = (
            f"{timeline.n_frames:,}",
            f"{rate:.2f} Hz" if rate else "unknown",
            f"{median:.1f} ms" if median else "unknown",
            dropped,
            _duration(timeline.duration_s),
        )
        rows.append(
            f"<tr><th>{_e(timeline.device)}</th>"
            + "".join(f'<td class="number">{_e(cell)}</td>' for cell in cells)
            + "</tr>"
        )
    note = (
        '<p class="note">The interval before each frame, per device, on the session clock; '
        "red lines mark dropped frames (their number beside). Pauses between acquisitions "
        "are not intervals.</p>"
    )
    table = f'<div class="scroll"><table>{header}{"".join(rows)}</table></div>'
    return _section(
        "timing", f"{note}{table}{_plot(timing_plot(timelines, axis), 'Frame intervals')}"
    )


def _orientation(orientation: Sequence[HeadOrientation], axis: SessionAxis) -> str:
    shown = [o for o in orientation if len(o.times_s)]
    if not shown:
        return _section("head-orientation", _none("No head orientation samples."))
    parts = [
        '<p class="note">From the scope\'s BNO055 quaternions, as Euler angles: yaw (turning), '
        "pitch (nodding) and roll (tilting), in degrees.</p>"
    ]
    for entry in shown:
        heading = f"<h3>{_e(entry.device)} <small>{len(entry.times_s):,} samples</small></h3>"
        parts.append(
            heading + _plot(orientation_plot(entry, axis), f"Head orientation of {entry.device}")
        )
    return _section("head-orientation", "\n".join(parts))


def _behaviour(frames: Sequence[CameraFrame]) -> str:
    if not frames:
        return _section("behaviour", _none("No behaviour camera."))
    by_device: dict[str, list[CameraFrame]] = {}
    for frame in frames:
        by_device.setdefault(frame.device, []).append(frame)
    parts = ['<p class="note">One frame per acquisition, as recorded.</p>']
    for device, shown in by_device.items():
        figures = []
        for frame in shown:
            height, width = frame.image.shape[:2]
            when = f", at {frame.time_s:.1f} s" if frame.time_s is not None else ""
            picture = _img(
                photo_jpeg(frame.image), f"{device} in {frame.acquisition}", mime="image/jpeg"
            )
            caption = f"{frame.acquisition}: {width} × {height} px{when}"
            figures.append(f"<figure>{picture}<figcaption>{_e(caption)}</figcaption></figure>")
        parts.append(f'<h3>{_e(device)}</h3><div class="pair">{"".join(figures)}</div>')
    return _section("behaviour", "\n".join(parts))


def _settings(settings: Sequence[AcquisitionSettings]) -> str:
    if not settings:
        return _section("settings", _none("No settings recorded."))
    parts = []
    for acquisition, tables in _grouped(settings).items():
        devices = list(tables)
        names = list(dict.fromkeys(name for values in tables.values() for name in values))
        header = "<tr><th>Setting</th>" + "".join(f"<th>{_e(d)}</th>" for d in devices) + "</tr>"
        rows = "".join(
            f"<tr><th>{_e(name)}</th>"
            + "".join(f"<td>{_e(_value(tables[d].get(name, None)))}</td>" for d in devices)
            + "</tr>"
            for name in names
        )
        parts.append(
            f'<h3>{_e(acquisition)}</h3><div class="scroll"><table>{header}{rows}</table></div>'
        )
    return _section("settings", "\n".join(parts))


def _validation(qc: SessionQC) -> str:
    result = qc.validation
    if result is None:
        return _section("validation", _none("The file was not validated."))
    by = f" by {_e(result.checked_with)}" if result.checked_with else ""
    if result.passed and not result.problems:
        return _section("validation", f'<p class="verdict ok">Valid: checked{by}, no problems.</p>')
    word = "Valid" if result.passed else "Not valid"
    css = "ok" if result.passed else "bad"
    n = len(result.problems)
    found = f"{n} problem{'s' if n != 1 else ''}" if n else "no problem lines"
    items = "".join(f"<li>{_e(problem)}</li>" for problem in result.problems)
    body = f'<p class="verdict {css}">{word}: checked{by}, {found}.</p>'
    return _section("validation", body + (f'<ul class="problems">{items}</ul>' if items else ""))


# Pieces


def _section(key: str, body: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}">\n<h2>{_e(title)}</h2>\n{body}\n</section>\n'


def _series_heading(series: ImagingSeries, note: str = "") -> str:
    where = ", ".join(part for part in (series.device, series.acquisition) if part)
    extra = "; ".join(part for part in (where, f"{series.n_frames:,} frames", note) if part)
    return f"<h3>{_e(series.name)} <small>{_e(extra)}</small></h3>"


def _plot(plot: Plot, alt: str) -> str:
    """A figure page.js fills with the plot's charts (rows of panels), its data as JSON."""
    keys = "".join(
        f'<span><i class="{_e(key.kind)}" style="--c: {_e(key.colour)}"></i>{_e(key.label)}</span>'
        for key in plot.legend
    )
    rows = "".join(
        (f'<div class="plot-title">{_e(row.title)}</div>' if row.title else "")
        + '<div class="plot-row"></div>'
        for row in plot.rows
    )
    return (
        f'<figure class="plot" role="img" aria-label="{_e(alt)}">'
        + (f'<div class="legend">{keys}</div>' if keys else "")
        + f'{rows}<figcaption class="plot-x">{_e(plot.axis.label)}</figcaption>'
        f'<script type="application/json" class="plot-data">{_json(plot.data())}</script>'
        "</figure>"
    )


def _json(data: Any) -> str:
    """`data` as JSON to put in a script element: `<`, `>` and `&` (only ever in strings) as
    \\u escapes, so no value can end the script or open a comment."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def _scripts() -> str:
    """uPlot and page.js, inline; uPlot's banner comment (a URL) replaced by its license."""
    licence = _inlined("vendor/LICENSE", r"\*/").strip()
    uplot = re.sub(
        r"\A/\*!.*?\*/\s*", "", _inlined("vendor/uPlot.iife.min.js"), count=1, flags=re.S
    )
    header = f"/*! uPlot {UPLOT_VERSION}, github.com/leeoniya/uPlot\n\n{licence}\n*/\n"
    return f"<script>{header}{uplot}</script>\n<script>{_inlined('page.js')}</script>\n"


@functools.cache
def _inlined(name: str, unsafe: str = "") -> str:
    """A file of this package (vendor/: uPlot's), checked to be safe inline: nothing in it
    ends its element or opens a comment (nor matches `unsafe`)."""
    text = resources.files("miniscope_core.quality").joinpath(name).read_text(encoding="utf-8")
    if re.search("|".join(filter(None, [r"</(script|style)", "<!--", unsafe])), text, re.I):
        raise ValueError(f"miniscope_core/quality/{name} cannot be inlined as it is")
    return text


def _img(encoded: bytes, alt: str, style: str = "", mime: str = "image/png") -> str:
    data = base64.b64encode(encoded).decode("ascii")
    styled = f' style="{style}"' if style else ""
    return f'<img src="data:{mime};base64,{data}" alt="{_e(alt)}"{styled}>'


def _picture(image: np.ndarray, alt: str, stretch: bool = True) -> str:
    """An image at full resolution; a small one shown enlarged by a whole factor, sharp."""
    width = image.shape[1]
    style = ""
    if width < SMALL_IMAGE_PX:
        factor = max(1, SMALL_IMAGE_PX // width)
        style = f"width: {width * factor}px; image-rendering: pixelated"
    return _img(image_png(image, stretch=stretch), alt, style)


def _none(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _grouped(
    settings: Iterable[AcquisitionSettings],
) -> dict[str, dict[str, dict[str, Any]]]:
    """acquisition -> device -> settings, in the order given."""
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in settings:
        grouped.setdefault(entry.acquisition, {})[entry.device] = dict(entry.values)
    return grouped


def _duration(seconds: float) -> str:
    """`12 min 5 s`, `45.2 s`, `1 h 02 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
