"""Existing files, interrupts, two writers, full disks: nothing half-written, nothing replaced."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import h5py
import pytest
from support import CLI, SMALL_SCOPE, _start, _wait_for_partial, read_nwb

from miniscope_core import ConversionOptions, convert_session, discover
from miniscope_core.cli import main
from miniscope_core.nwb.base import Fill
from miniscope_core.pipeline.stages import assemble, probe_videos
from miniscope_core.testing.synthetic import ScopeSpec, write_demo_session, write_session
from miniscope_core.verify.validate import VerificationError, verify_nwb


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    write_session(tmp_path / "s", n_acquisitions=1, scope=SMALL_SCOPE, cameras=[])
    return tmp_path / "s"


def test_an_existing_output_is_never_replaced_unasked(small, tmp_path, capsys):
    out = tmp_path / "out" / "o.nwb"
    out.parent.mkdir()
    out.write_bytes(b"a lab's earlier file")
    assert main(["convert", str(small), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {out}: exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"a lab's earlier file"
    assert main(["convert", str(small), "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert verify_nwb(out).passed and _leftovers(out.parent) == []


def test_bad_options_are_refused_by_the_parser(small, tmp_path, capsys):
    out = tmp_path / "o.nwb"
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(small), "-o", str(out), "--compression-level", "9"])
    assert exit_info.value.code == 2
    assert "--compression-level: isal takes 0-3, not 9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", str(small), "-o", str(out), "--workers", "0"])
    assert not out.exists()


def test_a_metadata_mistake_stops_before_anything_is_written(small, tmp_path, capsys):
    bad = tmp_path / "subject.yaml"
    bad.write_text("Subject:\n  sex: Male\n")
    out = tmp_path / "o.nwb"
    assert main(["convert", str(small), "-o", str(out), "--metadata", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: Subject.sex = 'Male': expected one of M, F, U, O")
    assert "\n" not in err and not out.exists() and _leftovers(tmp_path) == []


def test_provenance_names_the_tool_its_libraries_and_the_options(small, tmp_path):
    out = tmp_path / "o.nwb"
    convert_session(small, out, ConversionOptions(per_acquisition=True, compression_level=3))
    with read_nwb(out) as nwb:
        record = json.loads(nwb.source_script)
        assert nwb.source_script_file_name.startswith("miniscope-nwb ")
    assert record["tool"] == "miniscope-nwb"
    assert {"miniscope-nwb", "pynwb", "hdmf", "h5py", "ffmpeg"} <= record["versions"].keys()
    assert record["options"]["per_acquisition"] is True
    assert record["options"]["compression_level"] == 3
    assert record["options"]["deflate_engine"] == "isal"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session that takes a few seconds to convert, long enough to interrupt."""
    return write_demo_session(tmp_path_factory.mktemp("demo"))


def test_ctrl_c_says_one_line_and_leaves_nothing(demo, tmp_path):
    out = tmp_path / "o.nwb"
    process = _start(["convert", str(demo), "-o", str(out), "--quiet"], tmp_path)
    _wait_for_partial(tmp_path, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip() == "interrupted, nothing written"
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_killed_run_leaves_nothing_where_the_file_belongs_and_a_rerun_cleans_up(demo, tmp_path):
    out = tmp_path / "o.nwb"
    process = _start(["convert", str(demo), "-o", str(out), "--quiet"], tmp_path)
    _wait_for_partial(tmp_path, process)
    process.kill()
    process.wait(timeout=30)
    assert not out.exists()
    assert main(["convert", str(demo), "-o", str(out), "--quiet"]) == 0
    assert _leftovers(tmp_path) == [] and verify_nwb(out).passed


def test_a_second_writer_of_the_same_output_stops_and_the_first_completes(demo, tmp_path):
    out = tmp_path / "o.nwb"
    first = _start(["convert", str(demo), "-o", str(out), "--quiet"], tmp_path)
    _wait_for_partial(tmp_path, first)
    first.send_signal(signal.SIGSTOP)  # hold it mid-write while the second one tries
    try:
        second = subprocess.run(
            [*CLI, "convert", str(demo), "-o", str(out), "--quiet"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    assert f"is being written by process {first.pid} (since " in second.stderr
    assert "Traceback" not in second.stderr
    first.communicate(timeout=120)
    assert first.returncode == 0 and verify_nwb(out).passed


def _convert_onto_small_disk(size: str, cwd: Path) -> tuple[str, str, list[str]]:
    """`convert s -o disk/o.nwb` with a private tmpfs of `size` mounted on ./disk: a real full
    disk that no other process sees. Returns (exit code, stderr, what is left on the disk)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    (cwd / "disk").mkdir()
    convert = " ".join([*CLI, "convert", "s", "-o", "disk/o.nwb", "--quiet"])
    script = f"mount -t tmpfs -o size={size} tmpfs disk && {{ {convert}; echo $?; ls -A disk; }}"
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if "mount: " in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()}")
    code, *left = done.stdout.split()
    return code, done.stderr, left


def test_not_enough_space_is_said_before_decoding(tmp_path):
    scope = replace(SMALL_SCOPE, height=128, width=128, dropped_frames={})
    write_session(tmp_path / "s", n_acquisitions=1, scope=scope, cameras=[])
    code, err, left = _convert_onto_small_disk("1m", tmp_path)
    assert code == "2" and left == []
    assert "disk/o.nwb: not enough space: needs about 1.4 MB" in err


def test_a_disk_that_fills_up_while_writing_gives_one_line(tmp_path):
    tiny = ScopeSpec(n_frames=4, height=8, width=8, frames_per_file=4)
    write_session(tmp_path / "s", n_acquisitions=1, scope=tiny, cameras=[])
    code, err, left = _convert_onto_small_disk("64k", tmp_path)
    assert code == "2" and left == [], err
    assert err.startswith("error: disk/o.nwb: no space left on ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_verification_catches_what_schema_validation_misses(small, tmp_path):
    """Frames of the wrong size and frames never written: pynwb passes both, we do not."""
    out = tmp_path / "o.nwb"
    convert_session(small, out)
    assert verify_nwb(out).passed
    data_path = "acquisition/OnePhotonSeriesMiniscope/data"
    wrong = tmp_path / "wrong.nwb"
    shutil.copy(out, wrong)
    with h5py.File(wrong, "r+") as h5:
        data = h5[data_path]
        _, first_frame = data.id.read_direct_chunk((0, 0, 0))
        smaller = zlib.compress(zlib.decompress(first_frame)[:100])
        data.id.write_direct_chunk((112, 0, 0), smaller)
    problems = verify_nwb(wrong).problems
    expected = f"{data_path[:-5]}: frame 112 holds 100 bytes, a (8, 64, 48) chunk is 24576"
    assert problems == (expected,)
    session = discover(small)
    missing = tmp_path / "missing.nwb"
    with pytest.raises(VerificationError, match="0 of 15 chunks have data"):
        assemble(session, probe_videos(session, ConversionOptions()), missing, fill=_skip)
    assert not missing.exists() and _leftovers(tmp_path) == []


def _skip(_dataset: h5py.Dataset, part: Fill) -> int:
    """A writer that forgets its frames but claims them: they would read as zeros."""
    return part.n_frames
