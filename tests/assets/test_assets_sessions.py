"""The command line and the Dagster partitions see the same sessions, on every layout."""

from __future__ import annotations

from pathlib import Path

from support import acquisition, real_data

from miniscope_assets.scan import find_sessions as partitions
from miniscope_core import find_sessions, session_names


def _layouts(root: Path) -> list[Path]:
    acquisition(root / "cohort" / "mouseA" / "2021_05_14" / "11_34_45", "mouseA")
    acquisition(root / "cohort" / "mouseB" / "2021_05_14" / "11_37_45", "mouseB", 3)
    acquisition(root / "day" / "11_34_45")
    acquisition(root / "day" / "extra" / "12_00_00", minutes=30)
    acquisition(root / "lone_12_30_00", minutes=60)
    return [root, root / "cohort", root / "day", root / "day" / "11_34_45"]


def test_cli_and_partitions_agree_on_synthetic_layouts(tmp_path):
    for root in _layouts(tmp_path / "raw"):
        assert sorted(partitions(root).values()) == [s.resolve() for s in find_sessions(root)]
        assert partitions(root).keys() == session_names(root).keys()


def test_cli_and_partitions_agree_on_the_real_corpus():
    corpus = real_data()
    sessions = find_sessions(corpus)
    assert len(sessions) == 9  # the nine acquisition days its README lists
    assert sorted(partitions(corpus).values()) == [s.resolve() for s in sessions]
