"""`validate` gives DANDI's verdict: what DANDI only warns about is shown, labelled, not failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from miniscope_core import ConversionOptions, check_file, convert_session
from miniscope_core.cli import main
from miniscope_core.testing import ScopeSpec, write_session

SUBJECT = {"subject_id": "m1", "species": "Mus musculus", "sex": "M", "age": "P90D"}


def _stub(tmp_path: Path, subject: dict[str, str] | None = SUBJECT) -> Path:
    """A stub of a session: fewer frames (3 x 20) than pixels across, as a 608x608 stub."""
    scope = ScopeSpec(n_frames=20, height=96, width=96, frames_per_file=20)
    write_session(tmp_path / "raw", n_acquisitions=3, scope=scope, cameras=[])
    out = tmp_path / "stub.nwb"
    metadata = {"Subject": subject} if subject else None
    convert_session(tmp_path / "raw", out, ConversionOptions(stub=True), metadata=metadata)
    return out


def test_a_short_series_passes_with_the_orientation_heuristic_as_a_dandi_warning(tmp_path, capsys):
    out = _stub(tmp_path)
    result = check_file(out)
    assert result.passed, result.problems
    assert any(w.startswith("BEST_PRACTICE_VIOLATION (DANDI: warning) check_data_orientation")
               for w in result.warnings)  # fmt: skip
    assert main(["validate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: ok" in printed
    assert "warning: BEST_PRACTICE_VIOLATION (DANDI: warning) check_data_orientation" in printed


def test_what_dandi_requires_of_the_subject_fails_as_in_dandi_validate(tmp_path, capsys):
    out = _stub(tmp_path, subject=None)
    result = check_file(out)
    assert not result.passed
    assert any(line.startswith("check_subject_sex") for line in result.critical)
    assert main(["validate", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "error (DANDI: error) check_subject_sex" in printed
    assert "warning: BEST_PRACTICE_SUGGESTION (DANDI: not reported) check_keywords" in printed


def test_validate_dandi_adds_the_dandiset_rules(tmp_path, capsys):
    pytest.importorskip("dandi")
    out = _stub(tmp_path)
    dandiset = tmp_path / "000123"
    dandiset.mkdir()
    badly_named = dandiset / "stub.nwb"
    out.rename(badly_named)
    assert main(["validate", "--dandi", str(dandiset)]) == 2  # no dandiset.yaml
    assert "is not a dandiset folder" in capsys.readouterr().err
    (dandiset / "dandiset.yaml").write_text("identifier: DANDI:000123\nname: x\ndescription: y\n")
    assert main(["validate", "--dandi", str(dandiset)]) == 1
    printed = capsys.readouterr().out
    assert f"{badly_named}: ok" in printed and "DANDI's dandiset rules FAILED" in printed
    assert "DANDI.NON_DANDI_FILENAME" in printed or "DANDI.NON_DANDI_FOLDERNAME" in printed
