"""The QC report beside every converted file: what it says of a session, where it goes, and
that it obeys the output rules (never replaced unasked, never inside a recording)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from support import SMALL_CAMERA, TINY

from miniscope_core import ConversionOptions, OutputError, convert_session
from miniscope_core.cli import main
from miniscope_core.pipeline.qc import report_path

SCOPE = replace(TINY, n_frames=30, frames_per_file=12, dropped_frames={10: 5})
CAMERA = replace(SMALL_CAMERA, n_frames=20, frames_per_file=10, gaps={})


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from miniscope_core.testing.synthetic import write_session

    root = tmp_path_factory.mktemp("daq") / "m01" / "2024_01_15"
    write_session(root, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    return root


def test_the_report_is_beside_the_file_and_says_what_a_lab_asks(session: Path, tmp_path: Path):
    out = tmp_path / "s.nwb"
    done = convert_session(session, out)
    assert done.report == tmp_path / "s.nwb.qc.html" == report_path(out)
    page = done.report.read_text()
    qc = done.quality
    assert qc is not None and qc.frames == 60  # two acquisitions of 30 scope frames
    numbers = qc.as_metadata()
    scope = next(t for t in qc.timelines if t.device == "Miniscope")
    dropped = [r.timing.dropped_frames for r in done.recordings if r.device.kind == "miniscope"]
    assert scope.dropped == sum(dropped) == 10  # five frames missing in each acquisition
    assert numbers["frames"] == 60 and numbers["dropped_frames"] == qc.dropped_frames
    assert [c.acquisition for c in qc.camera_frames] == ["11_34_45", "11_37_45"]
    assert len(qc.imaging) == 1 and qc.imaging[0].mean_projection.shape == (16, 24)
    # each acquisition is registered against itself: the synthetic ones see different cells,
    # which against one reference read as tens of pixels of motion
    assert qc.max_motion_px is not None and qc.max_motion_px < 3
    for heading in (
        "Field of view",
        "Brightness over time",
        "Motion",
        "Frame timing",
        "Validation",
    ):
        assert heading in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2  # the projections
    assert len(re.findall(r'<figure class="plot" role="img"', page)) == 4  # brightness to head
    assert "http://" not in page and "https://" not in page  # opens with no server, offline


def test_no_report_when_asked_and_per_stub(session: Path, tmp_path: Path):
    done = convert_session(session, tmp_path / "s.nwb", ConversionOptions(report=False))
    assert done.report is None and sorted(p.name for p in tmp_path.iterdir()) == ["s.nwb"]
    argv = ["convert", str(session), "--output-dir", str(tmp_path / "d"), "--stub", "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "2024_01_15_stub.nwb",
        "2024_01_15_stub.nwb.qc.html",
    ]


def test_an_existing_report_is_kept_unless_overwrite(session: Path, tmp_path: Path):
    out, report = tmp_path / "s.nwb", tmp_path / "s.nwb.qc.html"
    report.write_text("the lab's own notes")
    with pytest.raises(OutputError, match=r"s\.nwb\.qc\.html: exists; pass --overwrite"):
        convert_session(session, out)
    assert report.read_text() == "the lab's own notes" and not out.exists()  # before decoding
    convert_session(session, out, overwrite=True)
    assert "Field of view" in report.read_text()
