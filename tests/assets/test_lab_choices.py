"""A session's file stays as the lab chose it: a run's choices stick to its session, files an
older converter or other options made are listed (`sessions --stale`) and re-converted
(`backfill --stale`), and the command line says plainly what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import pytest
from support import dagster_roots

from miniscope_assets.cli import main
from miniscope_assets.resources import MiniscopeStorage
from miniscope_core.testing.synthetic import ScopeSpec, write_session

SCOPE = ScopeSpec(n_frames=40, height=16, width=24, frames_per_file=25)
PER_ACQUISITION = ["OnePhotonSeriesMiniscope_11_34_45", "OnePhotonSeriesMiniscope_11_37_45"]


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    raw, out = dagster_roots(tmp_path, monkeypatch)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for animal in ("m1", "m2"):
        write_session(raw / animal, n_acquisitions=2, scope=SCOPE, cameras=[])
    return raw, out


def _series(path: Path) -> list[str]:
    with h5py.File(path, "r") as h5:
        return sorted(name for name in h5["acquisition"] if name.startswith("OnePhoton"))


def _rows(capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    header, *lines = capsys.readouterr().out.splitlines()
    assert header == "key\tfolder\tstate\twhy"
    return {line.split("\t")[0]: line.split("\t")[1:] for line in lines}


def test_a_runs_choices_stick_to_its_session(roots, capsys):
    raw, out = roots
    assert main(["backfill", "m1", "--in-process", "--per-acquisition"]) == 0
    assert _series(out / "m1" / "m1.nwb") == PER_ACQUISITION
    assert json.loads((out / "m1" / "choices.json").read_text()) == {"per_acquisition": True}
    # the folder changes later; the next run without choices (a sensor's) keeps the layout
    write_session(raw / "m1", n_acquisitions=3, scope=SCOPE, cameras=[])
    (out / "m1" / "m1.nwb").unlink()
    assert main(["backfill", "m1", "--in-process"]) == 0
    assert len(_series(out / "m1" / "m1.nwb")) == 3
    # the other session keeps the lab's layout
    assert main(["backfill", "m2", "--in-process"]) == 0
    assert _series(out / "m2" / "m2.nwb") == ["OnePhotonSeriesMiniscope"]
    assert not (out / "m2" / "choices.json").exists()


def test_stale_files_are_listed_and_only_those_reconverted(roots, monkeypatch, capsys):
    raw, out = roots
    assert main(["backfill", "--all", "--in-process"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--stale"]) == 0
    assert _rows(capsys) == {}
    # the lab now wants one series per acquisition; and m2's file came from an older converter
    monkeypatch.setenv("MINISCOPE_PER_ACQUISITION", "true")
    with h5py.File(out / "m2" / "m2.nwb", "r+") as h5:
        made = json.loads(h5["general/source_script"][()])
        made["versions"]["miniscope-nwb"] = "0.0.9"
        del h5["general/source_script"]
        h5["general/source_script"] = json.dumps(made)
    assert main(["sessions"]) == 0
    rows = _rows(capsys)
    assert rows["m1"][1:] == [
        "stale",
        "made with per_acquisition=False (now True); `backfill --stale` re-converts",
    ]
    assert rows["m2"][1] == "stale" and rows["m2"][2].startswith(
        "made by miniscope-nwb 0.0.9 (now "
    )
    before = (out / "m1" / "m1.nwb").stat().st_mtime_ns
    monkeypatch.setenv("MINISCOPE_PER_ACQUISITION", "false")  # m1 is current again
    assert main(["backfill", "--stale", "--in-process"]) == 0
    assert (
        "m1:" not in capsys.readouterr().out
        and (out / "m1" / "m1.nwb").stat().st_mtime_ns == before
    )
    assert main(["sessions", "--stale"]) == 0
    assert _rows(capsys) == {}


def test_stale_against_a_sessions_recorded_choices(roots, capsys):
    raw, out = roots
    assert main(["backfill", "m1", "--in-process", "--per-acquisition"]) == 0
    capsys.readouterr()
    storage = MiniscopeStorage.from_env()
    assert storage.stale_reason("m1", out / "m1" / "m1.nwb") is None  # as the session chose
    (out / "m1" / "choices.json").write_text("{}")  # forgotten: the lab's layout again
    assert storage.stale_reason("m1", out / "m1" / "m1.nwb") == (
        "made with per_acquisition=True (now False)"
    )


def test_the_command_line_says_what_is_wrong(roots, tmp_path, monkeypatch, capsys):
    raw, out = roots
    assert main(["backfill", "m1", "--url", "http://127.0.0.1:9"]) == 2  # nothing listens
    err = capsys.readouterr().err
    assert "no Dagster webserver answers at http://127.0.0.1:9" in err and "--in-process" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("MINISCOPE_RAW_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit, match=r"nowhere: the raw root is not a folder"):
        main(["sessions"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"per_acquisition": tr', "cannot be read as JSON"),
        ('["per_acquisition"]', "not a JSON object"),
        ('{"per_acquisiton": true}', r"\['per_acquisiton'\]"),
        ('{"per_acquisition": "often"}', "per_acquisition: Input should be a valid boolean"),
    ],
    ids=["truncated", "not an object", "unknown name", "wrong type"],
)
def test_a_damaged_choices_file_is_one_line_naming_it(roots, capsys, text, message):
    raw, out = roots
    (out / "m1").mkdir(parents=True)
    (out / "m1" / "choices.json").write_text(text)
    assert main(["backfill", "m1", "--in-process"]) == 1
    printed = capsys.readouterr().out
    assert re.search(rf"choices\.json: .*{message}", printed), printed
    assert not (out / "m1" / "m1.nwb").exists()
