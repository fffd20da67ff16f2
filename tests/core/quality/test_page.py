"""The QC page: every section, images that decode at their true size, plots whose data are the
session's own, escaped names, written atomically without replacing a file, and drawn by a real
browser (headless Chromium) with no script error."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from qc_builders import session_qc
from support import dump_dom, screenshot

from miniscope_core.outputs.atomic import OutputExistsError
from miniscope_core.quality.model import HeadOrientation, SessionQC, Thresholds
from miniscope_core.quality.page import SECTIONS, _json, render_page, write_page
from miniscope_core.quality.plots import COLOURS, LIMIT_COLOUR


class _Page(HTMLParser):
    """The page's section ids, images (src, style), scripts (attributes, text), plots' JSON
    and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.external: list[str] = []
        self.attributes: dict[str, dict[str, str]] = {}  # the first of each tag
        self.boxes: list[tuple[int, int, int, int]] = []  # the test's probe: plots' rows
        self._script: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.attributes.setdefault(tag, values)
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "img":
            self.images.append((values["src"], values.get("style", "")))
        if tag == "script":
            self._script = values
            self.scripts.append((values, ""))
        if tag == "figure" and "data-box" in values:
            left, top, width, height = (round(float(v)) for v in values["data-box"].split(","))
            self.boxes.append((left, top, width, height))
        for name in ("src", "href"):
            link = values.get(name, "")
            if link and not link.startswith(("data:", "#")):
                self.external.append(link)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attributes, text = self.scripts[-1]
            self.scripts[-1] = (attributes, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    @property
    def plots(self) -> list[dict[str, Any]]:
        return [
            json.loads(text)
            for attributes, text in self.scripts
            if attributes.get("type") == "application/json"
        ]


def _parsed(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _decoded(src: str) -> Image.Image:
    """A PNG (projections) or JPEG (camera frames) data URI, decoded."""
    for prefix, magic, kind in (
        ("data:image/png;base64,", b"\x89PNG\r\n\x1a\n", "PNG"),
        ("data:image/jpeg;base64,", b"\xff\xd8\xff", "JPEG"),
    ):
        if src.startswith(prefix):
            data = base64.b64decode(src[len(prefix) :], validate=True)
            assert data.startswith(magic)
            image = Image.open(io.BytesIO(data))
            assert image.format == kind
            return image
    raise AssertionError(f"not an inline PNG or JPEG: {src[:40]}")


def test_every_section_with_images_that_decode_at_full_resolution(qc: SessionQC) -> None:
    page = _parsed(render_page(qc))
    assert page.sections == [key for key, _ in SECTIONS]
    assert page.external == [] and all("src" not in a for a, _ in page.scripts)  # all inline
    images = [_decoded(src) for src, _ in page.images]
    assert len(images) == 4  # mean and max projections, two camera frames: plots are not images
    series = qc.imaging[0]
    mean = np.asarray(images[0])
    assert images[0].mode == "L" and mean.shape == series.mean_projection.shape == (120, 160)
    # the contrast stretch: 0.5th percentile black, 99.5th white, 256 even steps between
    low, high = np.percentile(series.mean_projection, [0.5, 99.5])
    expected = np.clip((series.mean_projection - low) / (high - low) * 256, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(mean, expected)
    assert np.asarray(images[1]).shape == series.max_projection.shape
    assert [image.size for image in images[2:]] == [(120, 90), (120, 90)]
    gray, rgb = (np.asarray(image, np.float64) for image in images[2:])
    assert np.abs(gray - qc.camera_frames[0].image).mean() < 3  # JPEG: within its compression
    assert np.abs(rgb - qc.camera_frames[1].image).mean() < 3
    small = [style for _, style in page.images[:2]]
    assert small == ["width: 320px; image-rendering: pixelated"] * 2  # small: enlarged, sharp
    assert len(page.plots) == 4  # brightness, motion, timing, head orientation
    assert "<noscript>" in render_page(qc)  # the plots need JavaScript: said without it


def test_the_plots_carry_the_sessions_times_and_values(qc: SessionQC) -> None:
    brightness, motion, timing, orientation = _parsed(render_page(qc)).plots
    series, pause = qc.imaging[0], 120  # the second acquisition starts at row 120, at 200 s
    for plot in (brightness, motion, timing, orientation):
        (a, b), (c, d) = plot["panels"]  # the two acquisitions' stretches, and some room
        assert a < 0 and 9.95 < b < c < 200 and 205.95 < d < 210 and plot["cuts"] == []
    (line,) = brightness["rows"][0]["lines"]
    x, y = _line(line)
    assert np.isnan(y[pause]) and x[pause - 1] < x[pause] < x[pause + 1]  # the line's break
    np.testing.assert_allclose(np.delete(x, pause), series.times_s, atol=1e-6)
    np.testing.assert_allclose(np.delete(y, pause), series.brightness, atol=1e-4)
    tenth = len(series.times_s) // 10
    first, last = brightness["rows"][0]["bands"]
    assert first == [0.0, series.times_s[tenth - 1]] and last[1] == series.times_s[-1]

    dy, dx, distance, limit = motion["rows"][0]["lines"]
    assert series.motion is not None
    for line, values in ((dy, series.motion.shifts[:, 0]), (dx, series.motion.shifts[:, 1]),
                         (distance, series.motion.displacement)):  # fmt: skip
        x, y = _line(line)
        known = ~np.isnan(y)
        np.testing.assert_allclose(x[known], series.motion_times_s, atol=1e-6)
        np.testing.assert_allclose(y[known], values, atol=1e-4)
    assert limit["dash"] and limit["y"] == [10.0, 10.0]
    assert np.nanmax(_line(distance)[1]) == pytest.approx(qc.max_motion_px, abs=1e-4)

    for row, timeline in zip(timing["rows"], qc.timelines, strict=True):
        intervals, dropped = row["lines"]
        x, y = _line(intervals)
        pause = timeline.acquisition_starts[1]  # a break between the acquisitions
        assert np.isnan(y[pause]) and x[pause - 1] < x[pause] < x[pause + 1]
        expected = timeline.intervals_ms  # NaN before each acquisition's first frame
        np.testing.assert_allclose(np.delete(x, pause), timeline.timestamps_s, atol=1e-6)
        np.testing.assert_allclose(np.delete(y, pause), expected, atol=1e-4)
        after = np.searchsorted(timeline.timestamps_s, timeline.dropped_at_s, "right")
        assert dropped["colour"] == LIMIT_COLOUR
        np.testing.assert_allclose(dropped["x"], timeline.timestamps_s[after], atol=1e-6)
        np.testing.assert_allclose(dropped["y"], expected[after], atol=1e-4)
        marks = zip(timeline.dropped_at_s, timeline.dropped_counts.tolist(), strict=True)
        assert row["marks"] == [[round(t, 6), n] for t, n in marks]
    assert [r["marks"][0][1] for r in timing["rows"]] == [3, 1]  # as the session lost them
    assert dropped["y"][0] == pytest.approx(2000 / 15, abs=1e-3)  # the camera's gap: 2 frames

    yaw, pitch, roll = orientation["rows"][0]["lines"]
    t = qc.orientation[0].times_s
    np.testing.assert_allclose(_line(yaw)[0], t, atol=1e-6)
    np.testing.assert_allclose(_line(yaw)[1], 60 * np.sin(t / 2), atol=1e-3)  # degrees
    assert np.abs(_line(pitch)[1]).max() < 1e-6 and np.abs(_line(roll)[1]).max() < 1e-6


def test_an_angle_that_wraps_breaks_its_line() -> None:
    t = np.arange(0, 4, 0.05)
    yaw = np.radians(170 + 10 * t)  # from 170° up through 180°: -180° and on to -150°
    quaternions = np.stack([np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)], axis=1)
    entry = HeadOrientation("Miniscope", t, quaternions)
    page = render_page(SessionQC(session="s", nwb_file="s.nwb", orientation=[entry]))
    x, y = _line(_parsed(page).plots[-1]["rows"][0]["lines"][0])
    (gap,) = np.flatnonzero(np.isnan(y))
    assert y[gap - 1] > 175 and y[gap + 1] < -175 and x[gap - 1] < x[gap] < x[gap + 1]


def _line(line: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A plot line's x and y, null as NaN; x ascending, every one a number."""
    x = np.array(line["x"], dtype=np.float64)
    y = np.array([np.nan if v is None else v for v in line["y"]], dtype=np.float64)
    assert len(x) == len(y) and not np.isnan(x).any() and (np.diff(x) >= 0).all()
    return x, y


def test_names_and_values_are_escaped() -> None:
    text = render_page(session_qc(name="<script>alert(1)</script> & co"))
    assert "<script>alert" not in text
    assert html.escape("<script>alert(1)</script> & co") in text
    for raw in ("BehavCam <1>", "OnePhotonSeries<scope>", "<b>12</b>", "<bad> & worse"):
        assert raw not in text
        assert html.escape(raw) in text
    for _, script in _parsed(text).scripts:  # no script ends early
        assert "</" not in script and "<!--" not in script
    value = {"label": "</script><!-- & -->", "x": [1.5, None]}
    assert json.loads(_json(value)) == value and not set("<>&") & set(_json(value))


def test_the_summary_gives_a_verdict_per_threshold(qc: SessionQC) -> None:
    text = render_page(qc)
    summary = text[text.index('id="summary"') : text.index('id="field-of-view"')]
    assert "Look closer: dropped frames beyond the limit; the file failed validation." in summary
    assert "1.25 % (limit 1 %): beyond the limit" in summary
    assert "worst device Miniscope (3 of 240), 4 in all devices" in summary
    assert re.search(r"Largest motion</th><td>5\.\d+ px \(limit 10 px\): within the limit", summary)
    assert "-13.6 % (limit 20 %): within the limit" in summary
    lenient = SessionQC(**{**qc.__dict__, "thresholds": Thresholds(dropped_percent=2.0),
                           "validation": None})  # fmt: skip
    assert "Looks good: every number is within its limit." in render_page(lenient)
    assert lenient.as_metadata() == {
        "frames": 237,
        "duration_s": 11.9,
        "dropped_frames": 4,
        "dropped_percent": 1.25,
        "max_motion_px": pytest.approx(5.0, abs=0.5),
        "brightness_drift_percent": pytest.approx(-13.6, abs=0.1),
    }


def test_an_empty_session_still_shows_every_section() -> None:
    page = _parsed(render_page(SessionQC(session="empty", nwb_file="empty.nwb")))
    assert page.sections == [key for key, _ in SECTIONS] and page.images == []
    assert page.plots == []


def test_write_page_is_atomic_and_never_replaces_a_file_unless_asked(
    tmp_path: Path, qc: SessionQC
) -> None:
    path = tmp_path / "qc" / "session.html"
    assert write_page(qc, path) == path
    first = path.read_bytes()
    assert first.startswith(b"<!DOCTYPE html>")
    with pytest.raises(OutputExistsError):
        write_page(qc, path)
    assert path.read_bytes() == first
    write_page(session_qc(name="again"), path, overwrite=True)
    assert b"again" in path.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["session.html"]  # no temporaries


# After the page's own scripts: where each plot's rows are, and how tall the page is.
_PROBE = """<script>
document.querySelectorAll("figure.plot").forEach(function (figure) {
  var rows = figure.querySelectorAll(".plot-row"), top = rows[0].getBoundingClientRect();
  var bottom = rows[rows.length - 1].getBoundingClientRect();
  figure.setAttribute("data-box", [top.left, top.top + scrollY, top.width,
                                   bottom.bottom - top.top].join(","));
});
document.body.setAttribute("data-height", document.documentElement.scrollHeight);
</script>
"""


def _near(pixels: np.ndarray, colour: str, tolerance: int = 40) -> int:
    """How many pixels are within `tolerance` (each channel) of `colour` (#rrggbb)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(np.int64) - rgb) <= tolerance).all(axis=-1).sum())


def test_a_real_browser_draws_the_page(tmp_path: Path, qc: SessionQC) -> None:
    page = write_page(qc, tmp_path / "session.html")
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _parsed(dump_dom(probed.as_uri(), tmp_path, 1200, 1000))
    body = dom.attributes["body"]
    assert "data-plots-error" not in body, body["data-plots-error"]  # no script error
    # 2 panels (two acquisitions 200 s apart) for each of 5 rows (a timing row per device)
    assert body["data-plots"] == body["data-plots-drawn"] == "10"
    assert len(dom.boxes) == 4
    height = int(body["data-height"])
    pixels = screenshot(probed.as_uri(), tmp_path / "screenshot.png", 1200, height)[..., :3]
    pixels = (pixels * 255).round().astype(np.uint8)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 1000  # text, plots and images drawn, not a blank page
    assert (pixels[:400] < 77).all(axis=2).mean() > 0.005  # the heading and summary text
    areas = [pixels[top : top + h, left : left + w] for left, top, w, h in dom.boxes]
    for area in areas:  # drawn: axes, grid and lines, not a blank canvas
        assert area.size and (area < 200).any(axis=2).mean() > 0.003
    brightness, motion, timing, orientation = areas
    assert _near(brightness, COLOURS[0]) > 60  # the line
    assert _near(brightness, "#fbebdd", 6) > 2000  # the first and last tenth, shaded
    assert min(_near(motion, c) for c in (*COLOURS[:3], LIMIT_COLOUR)) > 50  # dy, dx, distance
    assert _near(timing, LIMIT_COLOUR, 25) > 100  # the dropped frames' dots and lines in red
    assert _near(timing, COLOURS[0]) > 200 and _near(timing, COLOURS[1]) > 200  # each device
    assert _near(orientation, COLOURS[2]) > 60  # yaw
