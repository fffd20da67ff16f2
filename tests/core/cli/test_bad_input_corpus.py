"""A corpus of broken recordings, and the five promises the CLI keeps on every one of them.

Each mutation damages a fresh copy of a tiny synthetic session (2 acquisitions, a 30-frame scope
in 3 videos, a 20-frame camera in 2). On every one of them:

1. `convert SESSION -o OUT.nwb --quiet` exits 0 (converted) or 2 (refused with exactly one line
   `error: <path>: <what>` naming a path that exists or should exist), never a traceback;
2. on exit 2 neither OUT.nwb nor a hidden temporary `.OUT.nwb*` is left beside it;
3. on exit 0 OUT.nwb reads back with pynwb, and `validate OUT.nwb` exits 0 or 1 (findings),
   never a traceback (checked by `test_validate_never_crashes`, in a background process so that
   its ~1 s per file of namespace loading runs beside the conversions);
4. the raw recording (every path under it, hidden ones and links included, and every byte) is
   the same before and after;
5. `inspect SESSION --no-decode` and `inspect SESSION --json` exit 0 or 2 without a traceback,
   and the JSON parses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from miniscope_core.cli import main
from miniscope_core.testing.synthetic import (
    CameraSpec,
    ScopeSpec,
    device_folder,
    imaging_frames,
    write_session,
    write_video,
)
from miniscope_core.testing.synthetic_legacy import LegacySpec, write_legacy_session

SCOPE = ScopeSpec(n_frames=30, height=16, width=24, frames_per_file=10)
CAMERA = CameraSpec(n_frames=20, height=12, width=16, frames_per_file=10)
FIRST, SECOND = "11_34_45", "11_37_45"  # the acquisition folders write_session makes
SCOPE_DIR, CAMERA_DIR = device_folder(SCOPE.name), device_folder(CAMERA.name)
BROKEN_WORDS = ("Traceback", "please report")
# Every case is damaged on purpose: what it warns is looked at by the tests of each module.
pytestmark = pytest.mark.filterwarnings("ignore::miniscope_core.errors.MiniscopeWarning")


# ---------------------------------------------------------------- running the CLI


@dataclass
class Run:
    code: int | None
    out: str
    err: str
    crash: str = ""  # the traceback of an exception that escaped main


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Run:
    """`main(argv)` in-process; anything escaping it (but SystemExit) is kept as `crash`."""
    capsys.readouterr()
    crash, code = "", None
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 2
    except BaseException:  # noqa: BLE001 - a traceback escaping main is what we look for
        import traceback

        crash = traceback.format_exc()
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err, crash)


def tail(text: str, lines: int = 3) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def assert_no_crash(run: Run, what: str) -> None:
    assert not run.crash, f"{what}: a traceback escaped main:\n{tail(run.crash)}"
    for word in BROKEN_WORDS:
        assert word not in run.out + run.err, f"{what}: {word!r} printed:\n{tail(run.err)}"


def assert_one_error_line(run: Run, what: str) -> None:
    """Exit 2: exactly one `error: <path>: <what is wrong>` line, the path existing (or its
    folder: a file that should be there)."""
    lines = [line for line in run.err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, f"{what}: stderr is not one error line:\n{run.err}"
    match = re.fullmatch(r"error: (.+?): (.+)", lines[0])
    assert match, f"{what}: not 'error: <path>: <problem>': {lines[0]!r}"
    named = Path(match.group(1))
    assert named.exists() or named.is_symlink() or named.parent.exists(), (
        f"{what}: the error names {named}, which neither exists nor should: {lines[0]!r}"
    )


# ---------------------------------------------------------------- the raw recording


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (hidden ones too, links not followed) -> its bytes' hash, `dir`,
    or `link -> target`."""
    state: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                state[key] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                state[key] = "dir"
            else:
                state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def assert_untouched(before: dict[str, str], root: Path) -> None:
    after = snapshot(root)
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not (added or removed or changed), (
        f"raw recording modified: added {added}, removed {removed}, changed {changed}"
    )


def leftovers(output: Path) -> list[str]:
    """The output and its hidden temporary files, where they would be."""
    if not output.parent.is_dir():
        return []
    return sorted(
        p.name
        for p in output.parent.iterdir()
        if p.name == output.name or p.name.startswith(f".{output.name}")
    )


# ---------------------------------------------------------------- background validation


_WORKER = r"""
import contextlib, io, json, sys, traceback
from miniscope_core.cli import main
for line in sys.stdin:
    path = line.rstrip("\n")
    out, err = io.StringIO(), io.StringIO()
    code, crash = None, ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["validate", path])
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            crash = traceback.format_exc()
    print(json.dumps({"path": path, "code": code, "out": out.getvalue(),
                      "err": err.getvalue(), "crash": crash}), flush=True)
"""


@dataclass
class Validator:
    """One long-lived `validate` process: files are sent as they are converted, and each
    result is waited for only by `test_validate_never_crashes`."""

    process: subprocess.Popen[str] | None = None
    results: dict[str, dict] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)  # case -> path
    seen: dict[str, str] = field(default_factory=dict)  # fingerprint -> case validated
    alike: dict[str, str] = field(default_factory=dict)  # case -> case whose file is alike
    done: threading.Condition = field(default_factory=threading.Condition)

    def submit(self, case: str, path: Path, content: str) -> None:
        """Validate `path` unless a file of the same `content` (see `fingerprint`) was sent."""
        if content in self.seen:
            self.alike[case] = self.seen[content]
            return
        self.seen[content] = case
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()
        self.sent[case] = str(path)
        assert self.process.stdin is not None
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            result = json.loads(line)
            with self.done:
                self.results[result["path"]] = result
                self.done.notify_all()
        with self.done:
            self.done.notify_all()

    def result(self, case: str, timeout: float = 120) -> dict:
        path = self.sent[case]
        with self.done:
            self.done.wait_for(
                lambda: path in self.results or self.process.poll() is not None, timeout
            )
        assert path in self.results, f"the validate process died or hung on {path}"
        return self.results[path]

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def fingerprint(path: Path) -> str:
    """Everything in an NWB file but its text: every object's name, shape and type, attribute
    names, and the values of every numeric dataset. Two outputs alike in all of it (a stray file
    left out, a link followed) differ only in paths and identifiers, and one `validate` of them
    stands for both: `validate` costs ~1 s a file (namespace loading), a conversion ~0.3 s."""
    digest = hashlib.sha256()

    def visit(name: str, item: h5py.Group | h5py.Dataset) -> None:
        digest.update(f"{name}|{sorted(item.attrs)}".encode())
        if isinstance(item, h5py.Dataset):
            digest.update(f"{item.shape}|{item.dtype}".encode())
            if item.dtype.kind in "biuf":
                digest.update(np.ascontiguousarray(item[()]).tobytes())

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def validator():
    background = Validator()
    yield background
    background.close()


# ---------------------------------------------------------------- the session and its damage


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "session"
    write_session(root, n_acquisitions=2, scope=SCOPE, cameras=[CAMERA])
    return root


@dataclass
class Place:
    """Where a case works: `session` (inside `raw`), `elsewhere` (inside `raw`, for link
    targets), and the default output; a mutation may return another output and extra args."""

    raw: Path
    session: Path
    elsewhere: Path
    output: Path

    def acq(self, which: str = FIRST) -> Path:
        return self.session / which

    def scope(self, which: str = FIRST) -> Path:
        return self.session / which / SCOPE_DIR

    def camera(self, which: str = FIRST) -> Path:
        return self.session / which / CAMERA_DIR


Mutation = Callable[[Place], "tuple[Path, list[str]] | None"]


def _cut(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _cut_mid_row(path: Path) -> None:
    """Cut a text table in the middle of a row past its middle."""
    data = path.read_bytes()
    row = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(data[: row + 3])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _json(path: Path, edit: Callable[[dict], None], replace: bool = False) -> None:
    """Edit a metaData.json in place (or, with `replace`, write what `edit` returns)."""
    meta = json.loads(path.read_text())
    result = edit(meta)
    path.write_text(json.dumps(result if replace else meta, indent=4))


def _set(path: Path, key: str, value: object) -> None:
    _json(path, lambda meta: meta.__setitem__(key, value))


def _set_start(path: Path, key: str, value: object) -> None:
    _json(path, lambda meta: meta["recordingStartTime"].__setitem__(key, value))


def _drop(path: Path, key: str) -> None:
    _json(path, lambda meta: meta.__delitem__(key))


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write_rows(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def _replace_time(path: Path, row: int, value: str) -> None:
    """Data row `row` (0-based, after the header) gets `value` as its Time Stamp (ms)."""
    rows = _rows(path)
    fields = rows[row + 1].split(",")
    fields[1] = value
    rows[row + 1] = ",".join(fields)
    _write_rows(path, rows)


def _move_elsewhere(place: Place, path: Path) -> Path:
    target = place.elsewhere / path.name
    shutil.move(path, target)
    return target


def _timestamps(place: Place, which: str = FIRST) -> Path:
    return place.scope(which) / "timeStamps.csv"


# truncated


def truncated_middle_video(p: Place) -> None:
    _cut(p.scope() / "1.avi")


def truncated_last_video(p: Place) -> None:
    _cut(p.scope() / "2.avi")


def truncated_camera_video(p: Place) -> None:
    _cut(p.camera() / "0.avi", 0.3)


def truncated_video_header_only(p: Place) -> None:
    (p.scope() / "0.avi").write_bytes((p.scope() / "0.avi").read_bytes()[:200])


def truncated_session_metadata(p: Place) -> None:
    _cut(p.acq() / "metaData.json")


def truncated_device_metadata(p: Place) -> None:
    _cut(p.scope() / "metaData.json")


def truncated_timestamps_mid_row(p: Place) -> None:
    _cut_mid_row(_timestamps(p))


def truncated_camera_timestamps_mid_row(p: Place) -> None:
    _cut_mid_row(p.camera() / "timeStamps.csv")


def truncated_head_orientation(p: Place) -> None:
    _cut_mid_row(p.scope() / "headOrientation.csv")


# empty


def empty_video(p: Place) -> None:
    _empty(p.scope() / "1.avi")


def empty_first_camera_video(p: Place) -> None:
    _empty(p.camera() / "0.avi")


def empty_session_metadata(p: Place) -> None:
    _empty(p.acq() / "metaData.json")


def empty_device_metadata(p: Place) -> None:
    _empty(p.scope() / "metaData.json")


def empty_camera_metadata(p: Place) -> None:
    _empty(p.camera() / "metaData.json")


def header_only_timestamps(p: Place) -> None:
    _write_rows(_timestamps(p), _rows(_timestamps(p))[:1])


def header_only_camera_timestamps(p: Place) -> None:
    path = p.camera() / "timeStamps.csv"
    _write_rows(path, _rows(path)[:1])


def empty_timestamps(p: Place) -> None:
    _empty(_timestamps(p))


def empty_head_orientation(p: Place) -> None:
    _empty(p.scope() / "headOrientation.csv")


def empty_notes_with_header(p: Place) -> None:
    (p.acq() / "notes.csv").write_text("Time Stamp (ms), Note\n")


def empty_folder_as_device(p: Place) -> None:
    shutil.rmtree(p.camera())
    p.camera().mkdir()


def empty_acquisition_folder(p: Place) -> None:
    (p.session / "11_40_45").mkdir()


# links


def acquisition_is_a_link(p: Place) -> None:
    target = _move_elsewhere(p, p.acq(SECOND))
    p.acq(SECOND).symlink_to(target, target_is_directory=True)


def device_folder_is_a_link(p: Place) -> None:
    target = _move_elsewhere(p, p.camera())
    p.camera().symlink_to(target, target_is_directory=True)


def video_is_a_link(p: Place) -> None:
    target = _move_elsewhere(p, p.scope() / "1.avi")
    (p.scope() / "1.avi").symlink_to(target)


def video_is_a_relative_link(p: Place) -> None:
    shutil.move(p.scope() / "1.avi", p.scope() / "one.data")
    (p.scope() / "1.avi").symlink_to("one.data")


def broken_link_as_video(p: Place) -> None:
    (p.scope() / "2.avi").unlink()
    (p.scope() / "2.avi").symlink_to(p.elsewhere / "gone.avi")


def broken_link_stray(p: Place) -> None:
    (p.acq() / "old_run").symlink_to(p.elsewhere / "not-there", target_is_directory=True)


def link_loop_to_session(p: Place) -> None:
    (p.acq() / "loop").symlink_to("..", target_is_directory=True)


def link_loop_to_itself(p: Place) -> None:
    (p.scope() / "3.avi").symlink_to("3.avi")


def two_links_to_one_acquisition(p: Place) -> None:
    target = _move_elsewhere(p, p.acq(SECOND))
    p.acq(SECOND).symlink_to(target, target_is_directory=True)
    (p.session / "11_40_45").symlink_to(target, target_is_directory=True)


def timestamps_is_a_link(p: Place) -> None:
    target = _move_elsewhere(p, _timestamps(p))
    _timestamps(p).symlink_to(target)


# damaged rows


def garbage_head_orientation_rows(p: Place) -> None:
    path = p.scope() / "headOrientation.csv"
    rows = _rows(path)
    rows[3:3] = ["garbage", "nan,nan,nan,nan,nan", "61,1,2", "", "x,0.1,0.2,0.3,0.4"]
    rows.append("inf,inf,-inf,nan,1e400")
    _write_rows(path, rows)


def camera_time_not_a_number_middle(p: Place) -> None:
    _replace_time(p.camera() / "timeStamps.csv", 10, "abc")


def camera_time_not_a_number_end(p: Place) -> None:
    _replace_time(p.camera() / "timeStamps.csv", CAMERA.n_frames - 1, "abc")


def scope_time_not_a_number_middle(p: Place) -> None:
    _replace_time(_timestamps(p), 15, "12x")


def scope_time_nan(p: Place) -> None:
    _replace_time(_timestamps(p), 15, "nan")


def scope_time_empty_field(p: Place) -> None:
    _replace_time(_timestamps(p), 5, "")


def time_going_back(p: Place) -> None:
    _replace_time(_timestamps(p), 15, "100")


def fractional_ms(p: Place) -> None:
    path = _timestamps(p)
    rows = _rows(path)
    for index in range(1, len(rows)):
        fields = rows[index].split(",")
        fields[1] = f"{fields[1]}.5"
        rows[index] = ",".join(fields)
    _write_rows(path, rows)


def huge_time(p: Place) -> None:
    _replace_time(_timestamps(p), 29, str(2**70))


def frame_numbers_repeat(p: Place) -> None:
    path = _timestamps(p)
    rows = _rows(path)
    rows[6] = "4" + rows[6][rows[6].index(",") :]
    _write_rows(path, rows)


def timestamps_short_and_long_rows(p: Place) -> None:
    path = _timestamps(p)
    rows = _rows(path)
    rows[4] = rows[4].split(",")[0]
    rows[8] = rows[8] + ",7,8,9"
    _write_rows(path, rows)


def timestamps_header_renamed(p: Place) -> None:
    path = _timestamps(p)
    rows = _rows(path)
    rows[0] = "frame,time,buffer"
    _write_rows(path, rows)


def notes_without_time(p: Place) -> None:
    (p.acq() / "notes.csv").write_text(
        "Time Stamp (ms), Note\n100,baseline\njust a line\n,empty time\nabc,text\n500,x,y,z\n"
    )


def notes_invalid_utf8(p: Place) -> None:
    (p.acq() / "notes.csv").write_bytes(b"Time Stamp (ms), Note\n100,caf\xe9\n\xff\xfe,\x80\n")


def timestamps_invalid_utf8(p: Place) -> None:
    path = _timestamps(p)
    path.write_bytes(path.read_bytes().replace(b"\n5,", b"\n\xff\xfe5,", 1))


def head_orientation_invalid_utf8(p: Place) -> None:
    path = p.scope() / "headOrientation.csv"
    data = path.read_bytes()
    row = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(data[:row] + b"\x80\xff,\xc3\n" + data[row:])


def metadata_invalid_utf8(p: Place) -> None:
    path = p.acq() / "metaData.json"
    path.write_bytes(path.read_bytes().replace(b'"m01"', b'"m\xff01"'))


def crlf_line_endings(p: Place) -> None:
    for path in p.session.rglob("*"):
        if path.suffix in (".csv", ".json"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


def utf8_bom(p: Place) -> None:
    for path in p.session.rglob("*"):
        if path.suffix in (".csv", ".json") and path.stat().st_size:
            path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def nul_bytes_in_timestamps(p: Place) -> None:
    path = _timestamps(p)
    path.write_bytes(path.read_bytes().replace(b"\n7,", b"\n\x00\x007,", 1))


# odd numbers (device metaData.json)


def _device(p: Place) -> Path:
    return p.scope() / "metaData.json"


def frames_per_file_missing(p: Place) -> None:
    _drop(_device(p), "framesPerFile")


def frames_per_file_zero(p: Place) -> None:
    _set(_device(p), "framesPerFile", 0)


def frames_per_file_negative(p: Place) -> None:
    _set(_device(p), "framesPerFile", -1)


def frames_per_file_huge(p: Place) -> None:
    _set(_device(p), "framesPerFile", 2**63)


def frames_per_file_text(p: Place) -> None:
    _set(_device(p), "framesPerFile", "abc")


def frames_per_file_fraction(p: Place) -> None:
    _set(_device(p), "framesPerFile", 1.5)


def frames_per_file_wrong(p: Place) -> None:
    _set(_device(p), "framesPerFile", 7)


def frame_rate_typo(p: Place) -> None:
    _set(_device(p), "frameRate", "30FSP")


def frame_rate_word(p: Place) -> None:
    _set(_device(p), "frameRate", "fast")


def frame_rate_negative(p: Place) -> None:
    _set(_device(p), "frameRate", -5)


def gain_word(p: Place) -> None:
    _set(_device(p), "gain", "loud")


def roi_with_strings(p: Place) -> None:
    _set(_device(p), "ROI", {"height": "16", "leftEdge": "a", "topEdge": None, "width": "w"})


def roi_not_the_video_size(p: Place) -> None:
    _set(_device(p), "ROI", {"height": 600, "leftEdge": 0, "topEdge": 0, "width": 600})


def huge_led0(p: Place) -> None:
    _set(_device(p), "led0", 1e308 * 10)  # json.dumps writes Infinity


def led0_big_integer(p: Place) -> None:
    _set(_device(p), "led0", 10**40)


def compression_unknown(p: Place) -> None:
    _set(_device(p), "compression", 42)


# changes mid-session


def second_frame_size_differs(p: Place) -> None:
    folder = p.scope(SECOND)
    for index in range(3):
        frames = imaging_frames(10, 20, 28, seed=5, start=10 * index)
        write_video(folder / f"{index}.avi", frames, "FFV1", (28, 20))


def device_in_one_acquisition_only(p: Place) -> None:
    shutil.rmtree(p.camera(SECOND))
    _set(p.acq(SECOND) / "metaData.json", "cameras", [])


def renamed_device_folder(p: Place) -> None:
    p.camera(SECOND).rename(p.acq(SECOND) / "BehavCam_3")


def renamed_device_everywhere_in_one(p: Place) -> None:
    p.camera(SECOND).rename(p.acq(SECOND) / "BehavCam_3")
    _set(p.acq(SECOND) / "metaData.json", "cameras", ["BehavCam 3"])
    _set(p.acq(SECOND) / "BehavCam_3" / "metaData.json", "deviceName", "BehavCam 3")


def device_type_changes(p: Place) -> None:
    _set(p.scope(SECOND) / "metaData.json", "deviceType", "Miniscope_V3")


def two_subjects(p: Place) -> None:
    _set(p.acq(SECOND) / "metaData.json", "animalName", "m02")


# wrong types


def miniscopes_a_string(p: Place) -> None:
    _set(p.acq() / "metaData.json", "miniscopes", "Miniscope")


def cameras_null(p: Place) -> None:
    _set(p.acq() / "metaData.json", "cameras", None)


def device_type_a_number(p: Place) -> None:
    _set(_device(p), "deviceType", 4)


def recording_start_a_string(p: Place) -> None:
    _set(p.acq() / "metaData.json", "recordingStartTime", "2021-05-14 11:34:45")


def msec_since_epoch_missing(p: Place) -> None:
    _json(
        p.acq() / "metaData.json",
        lambda meta: meta["recordingStartTime"].__delitem__("msecSinceEpoch"),
    )


def month_13(p: Place) -> None:
    _set_start(p.acq() / "metaData.json", "month", 13)


def start_fields_strings(p: Place) -> None:
    _set_start(p.acq() / "metaData.json", "hour", "eleven")


def session_metadata_a_list(p: Place) -> None:
    _json(p.acq() / "metaData.json", lambda meta: [meta], replace=True)


def device_metadata_not_json(p: Place) -> None:
    _device(p).write_text("deviceName = Miniscope\n")


def animal_name_a_number(p: Place) -> None:
    _set(p.acq() / "metaData.json", "animalName", 12)


def device_name_mismatch(p: Place) -> None:
    _set(_device(p), "deviceName", "Other scope")


# missing pieces


def middle_video_deleted(p: Place) -> None:
    (p.scope() / "1.avi").unlink()


def all_camera_videos_deleted(p: Place) -> None:
    for video in p.camera().glob("*.avi"):
        video.unlink()


def all_scope_videos_deleted(p: Place) -> None:
    for video in p.scope().glob("*.avi"):
        video.unlink()


def scope_timestamps_deleted(p: Place) -> None:
    _timestamps(p).unlink()


def device_metadata_deleted(p: Place) -> None:
    _device(p).unlink()


def listed_device_folder_missing(p: Place) -> None:
    shutil.rmtree(p.camera())


def session_metadata_deleted(p: Place) -> None:
    (p.acq() / "metaData.json").unlink()


def head_orientation_deleted(p: Place) -> None:
    (p.scope() / "headOrientation.csv").unlink()


def notes_deleted(p: Place) -> None:
    (p.acq() / "notes.csv").unlink()


# stray files


def stray_avi_bak(p: Place) -> None:
    shutil.copy(p.scope() / "1.avi", p.scope() / "1.avi.bak")


def stray_ds_store(p: Place) -> None:
    for folder in (p.session, p.acq(), p.scope()):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))


def stray_pose_csv(p: Place) -> None:
    tracker = p.acq() / "behaviorTracker"
    tracker.mkdir()
    (tracker / "metaData.json").write_text('{"enabled": false}')
    (tracker / "pose.csv").write_text(
        "DLC-Live Pose Data.\n" + "".join(f"{i},1.5,2.5,0.9,\n" for i in range(20))
    )


def stray_copy_avi(p: Place) -> None:
    shutil.copy(p.scope() / "0.avi", p.scope() / "0 (1).avi")


def stray_extra_video(p: Place) -> None:
    shutil.copy(p.scope() / "2.avi", p.scope() / "3.avi")


def stray_text_named_avi(p: Place) -> None:
    (p.scope() / "1.avi").write_text("this is not a video\n")


def stray_folder_named_avi(p: Place) -> None:
    (p.scope() / "3.avi").mkdir()


def nested_old_copy_of_acquisition(p: Place) -> None:
    shutil.copytree(p.acq(), p.acq(SECOND) / "old" / FIRST)


def duplicated_acquisition_folder(p: Place) -> None:
    shutil.copytree(p.acq(), p.session / f"{FIRST} copy")


def session_level_stray_files(p: Place) -> None:
    (p.session / "README.txt").write_text("mouse m01, day 3\n")
    (p.session / "timeStamps.csv").write_text("Frame Number,Time Stamp (ms),Buffer Index\n0,1,0\n")


# legacy V3


def _legacy(p: Place) -> Path:
    shutil.rmtree(p.session)
    p.session.mkdir()
    return write_legacy_session(p.session, [LegacySpec()])[0].folder


def legacy_truncated_timestamp_dat(p: Place) -> None:
    _cut_mid_row(_legacy(p) / "timestamp.dat")


def legacy_video_deleted(p: Place) -> None:
    videos = sorted(_legacy(p).glob("msCam*.avi"))
    videos[0].unlink()


def legacy_empty_settings(p: Place) -> None:
    _empty(_legacy(p) / "settings_and_notes.dat")


# output side


def output_parent_is_a_file(p: Place) -> tuple[Path, list[str]]:
    p.output.parent.mkdir(parents=True, exist_ok=True)
    (p.output.parent / "afile").write_text("x")
    return p.output.parent / "afile" / "o.nwb", []


def output_not_ending_in_nwb(p: Place) -> tuple[Path, list[str]]:
    return p.output.with_name("o.h5"), []


def output_is_a_folder(p: Place) -> tuple[Path, list[str]]:
    p.output.mkdir(parents=True)
    return p.output, ["--overwrite"]


def output_is_a_session_file(p: Place) -> tuple[Path, list[str]]:
    return p.scope() / "0.avi", ["--overwrite"]


def output_is_session_metadata(p: Place) -> tuple[Path, list[str]]:
    return p.acq() / "metaData.json", []


def output_new_file_inside_session(p: Place) -> tuple[Path, list[str]]:
    return p.session / "session.nwb", ["--overwrite"]


def output_is_the_session(p: Place) -> tuple[Path, list[str]]:
    return p.session, ["--overwrite"]


# ---------------------------------------------------------------- the corpus


MUTATIONS: list[object] = [
    truncated_middle_video,
    truncated_last_video,
    truncated_session_metadata,
    truncated_device_metadata,
    truncated_timestamps_mid_row,
    truncated_head_orientation,
    empty_video,
    empty_first_camera_video,
    empty_session_metadata,
    empty_device_metadata,
    header_only_timestamps,
    empty_notes_with_header,
    empty_folder_as_device,
    acquisition_is_a_link,
    video_is_a_link,
    broken_link_as_video,
    broken_link_stray,
    link_loop_to_session,
    two_links_to_one_acquisition,
    garbage_head_orientation_rows,
    camera_time_not_a_number_middle,
    camera_time_not_a_number_end,
    scope_time_not_a_number_middle,
    time_going_back,
    fractional_ms,
    huge_time,
    timestamps_short_and_long_rows,
    notes_without_time,
    notes_invalid_utf8,
    timestamps_invalid_utf8,
    crlf_line_endings,
    utf8_bom,
    frames_per_file_missing,
    frames_per_file_zero,
    frames_per_file_negative,
    frames_per_file_huge,
    frames_per_file_text,
    frames_per_file_fraction,
    frame_rate_typo,
    frame_rate_word,
    frame_rate_negative,
    gain_word,
    roi_with_strings,
    huge_led0,
    second_frame_size_differs,
    device_in_one_acquisition_only,
    renamed_device_folder,
    two_subjects,
    miniscopes_a_string,
    device_type_a_number,
    recording_start_a_string,
    msec_since_epoch_missing,
    month_13,
    middle_video_deleted,
    all_camera_videos_deleted,
    scope_timestamps_deleted,
    device_metadata_deleted,
    listed_device_folder_missing,
    stray_avi_bak,
    stray_ds_store,
    stray_pose_csv,
    stray_copy_avi,
    nested_old_copy_of_acquisition,
    duplicated_acquisition_folder,
    legacy_truncated_timestamp_dat,
    legacy_video_deleted,
    output_parent_is_a_file,
    output_not_ending_in_nwb,
    output_is_a_folder,
    output_is_a_session_file,
    output_new_file_inside_session,
]
# More of each kind.
EXTENDED: list[object] = [
    truncated_camera_video,
    truncated_video_header_only,
    truncated_camera_timestamps_mid_row,
    empty_camera_metadata,
    header_only_camera_timestamps,
    empty_timestamps,
    empty_head_orientation,
    empty_acquisition_folder,
    device_folder_is_a_link,
    video_is_a_relative_link,
    link_loop_to_itself,
    timestamps_is_a_link,
    scope_time_nan,
    scope_time_empty_field,
    frame_numbers_repeat,
    timestamps_header_renamed,
    head_orientation_invalid_utf8,
    metadata_invalid_utf8,
    nul_bytes_in_timestamps,
    frames_per_file_wrong,
    roi_not_the_video_size,
    led0_big_integer,
    compression_unknown,
    renamed_device_everywhere_in_one,
    device_type_changes,
    cameras_null,
    start_fields_strings,
    session_metadata_a_list,
    device_metadata_not_json,
    animal_name_a_number,
    device_name_mismatch,
    all_scope_videos_deleted,
    session_metadata_deleted,
    head_orientation_deleted,
    notes_deleted,
    stray_extra_video,
    stray_text_named_avi,
    stray_folder_named_avi,
    session_level_stray_files,
    legacy_empty_settings,
    output_is_session_metadata,
    output_is_the_session,
]
MUTATIONS += EXTENDED
CASES = [m if hasattr(m, "values") else pytest.param(m, id=m.__name__) for m in MUTATIONS]
MUST_REFUSE = {  # cases where writing anything would break a promise: exit 2 is the only answer
    "output_parent_is_a_file",
    "output_is_a_folder",
    "output_is_a_session_file",
    "output_is_session_metadata",
    "output_new_file_inside_session",
    "output_is_the_session",
}


def _name(mutation: Mutation) -> str:
    return mutation.__name__


def check_convert(run: Run, output: Path, there: list[str]) -> Path | None:
    """Promises 1-3a (`there`: the leftovers(output) before the run); the file written (from
    `wrote <path>`) on exit 0."""
    assert_no_crash(run, "convert")
    assert run.code in (0, 2), f"convert exited {run.code}:\n{tail(run.err)}"
    if run.code == 2:
        assert_one_error_line(run, "convert")
        left = sorted(set(leftovers(output)) - set(there))
        assert left == [], f"refused, but left {left} beside {output}"
        return None
    match = re.search(r"^wrote (.+) \([\d.]+ MB\)", run.out, re.MULTILINE)
    written = Path(match.group(1)) if match else output
    assert written.is_file(), f"exit 0 but no {written}"
    hidden = [name for name in leftovers(written) if name.startswith(".")]
    assert hidden == [], f"converted, but temporary files are left: {hidden}"
    with NWBHDF5IO(written, "r") as io:
        nwb = io.read()
        assert nwb.identifier
    return written


def check_inspect(capsys: pytest.CaptureFixture[str], session: Path) -> None:
    """Promise 5."""
    for flags in (["--no-decode"], ["--json"]):
        run = run_cli(capsys, ["inspect", str(session), *flags])
        assert_no_crash(run, f"inspect {' '.join(flags)}")
        assert run.code in (0, 2), f"inspect {flags} exited {run.code}:\n{tail(run.err)}"
        if run.code == 2:
            assert_one_error_line(run, f"inspect {' '.join(flags)}")
        elif flags == ["--json"]:
            json.loads(run.out)


@pytest.mark.parametrize("mutation", CASES)
def test_promises_hold_on_a_broken_recording(
    mutation: Mutation, template: Path, validator: Validator, tmp_path: Path, capsys
):
    place = Place(
        raw=tmp_path / "raw",
        session=tmp_path / "raw" / "session",
        elsewhere=tmp_path / "raw" / "elsewhere",
        output=tmp_path / "out" / "o.nwb",
    )
    shutil.copytree(template, place.session, symlinks=True)
    place.elsewhere.mkdir()
    changed = mutation(place)
    output, extra = changed if changed is not None else (place.output, [])
    before, there = snapshot(place.raw), leftovers(output)

    run = run_cli(capsys, ["convert", str(place.session), "-o", str(output), "--quiet", *extra])
    written = check_convert(run, output, there)
    assert_untouched(before, place.raw)
    if _name(mutation) in MUST_REFUSE:
        assert run.code == 2, f"wrote {written} where nothing may be written"
    if written is not None:
        validator.submit(_name(mutation), written, fingerprint(written))
    check_inspect(capsys, place.session)
    assert_untouched(before, place.raw)


VALIDATE_BREAKS: dict[str, str] = {}  # case -> what `validate` does now on its output


def test_validate_never_crashes(validator: Validator):
    """Promise 3b on every output converted above: `validate` exits 0 or 1, no traceback."""
    if not validator.sent:
        pytest.skip("no conversion ran in this session (run with the corpus test)")
    broken: dict[str, str] = {}
    for case in validator.sent:
        result = validator.result(case)
        text = result["out"] + result["err"] + result["crash"]
        if result["code"] not in (0, 1) or any(word in text for word in BROKEN_WORDS):
            broken[case] = f"exit {result['code']}: {tail(result['crash'] or text)}"
    expected = {case for case in VALIDATE_BREAKS if case in validator.sent}
    assert broken.keys() == expected, broken
