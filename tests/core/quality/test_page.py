"""The QC page: every section, images that decode at their true size, escaped names, written
atomically without replacing a file, and drawn by a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from qc_builders import session_qc
from support import screenshot

from miniscope_core.outputs.atomic import OutputExistsError
from miniscope_core.quality.model import SessionQC, Thresholds
from miniscope_core.quality.page import SECTIONS, render_page, write_page


class _Page(HTMLParser):
    """The page's section ids, images (src, style), script tags and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "img":
            self.images.append((values["src"], values.get("style", "")))
        for name in ("src", "href"):
            link = values.get(name, "")
            if link and not link.startswith(("data:", "#")):
                self.external.append(link)


def _parsed(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _png(src: str) -> np.ndarray:
    """A PNG (projections, plots) or JPEG (camera frames) data URI, decoded (0-1 or 0-255)."""
    for prefix, magic, kind in (
        ("data:image/png;base64,", b"\x89PNG\r\n\x1a\n", "png"),
        ("data:image/jpeg;base64,", b"\xff\xd8\xff", "jpeg"),
    ):
        if src.startswith(prefix):
            data = base64.b64decode(src[len(prefix) :], validate=True)
            assert data.startswith(magic)
            return imread(io.BytesIO(data), format=kind)
    raise AssertionError(f"not an inline PNG or JPEG: {src[:40]}")


def test_every_section_with_images_that_decode_at_full_resolution(qc: SessionQC) -> None:
    page = _parsed(render_page(qc))
    assert page.sections == [key for key, _ in SECTIONS]
    assert "script" not in page.tags and page.external == []
    images = [_png(src) for src, _ in page.images]
    # mean and max projections, brightness, motion, timing, orientation, two camera frames
    assert len(images) == 8
    series = qc.imaging[0]
    assert images[0].shape[:2] == series.mean_projection.shape == (120, 160)
    assert images[1].shape[:2] == series.max_projection.shape
    assert [image.shape[:2] for image in images[-2:]] == [(90, 120), (90, 120)]
    assert all(image.shape[1] == 1100 for image in images[2:6])  # plots: the page's width
    rgb = images[-1].astype(np.float64)  # a JPEG: the photo, within its compression
    assert np.abs(rgb[..., :3] - qc.camera_frames[1].image).mean() < 3
    small = [style for _, style in page.images[:2]]
    assert small == ["width: 320px; image-rendering: pixelated"] * 2  # small: enlarged, sharp


def test_names_and_values_are_escaped() -> None:
    text = render_page(session_qc(name="<script>alert(1)</script> & co"))
    assert "<script>" not in text
    assert html.escape("<script>alert(1)</script> & co") in text
    for raw in ("BehavCam <1>", "OnePhotonSeries<scope>", "<b>12</b>", "<bad> & worse"):
        assert raw not in text
        assert html.escape(raw) in text


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


def test_a_real_browser_draws_the_page(tmp_path: Path, qc: SessionQC) -> None:
    page = write_page(qc, tmp_path / "session.html")
    pixels = screenshot(page.as_uri(), tmp_path / "screenshot.png", 1200, 3000)
    colours = np.unique((pixels[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 1000  # text, plots and images drawn, not a blank page
    top = pixels[:400, :, :3]
    assert (top < 0.3).all(axis=2).mean() > 0.005  # the heading and summary text are there
