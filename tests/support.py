"""Helpers shared by the tests: small device specs and reading NWB files back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.request import ProxyHandler, build_opener

import numpy as np
import pytest
from PIL import Image
from pynwb import NWBHDF5IO, NWBFile

from miniscope_core.testing.synthetic import (
    DEFAULT_START,
    AcquisitionSpec,
    CameraSpec,
    ScopeSpec,
    write_acquisition,
)
from miniscope_core.testing.synthetic_legacy import LegacySpec, write_legacy_recording

# The repository, and the real DAQ recordings from other labs in the shared/ folder beside it.
PROJECT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-miniscope"


def real_data(relative: str = "") -> Path:
    """A path in REAL_DATA. Missing, it skips the test (or module) locally but fails in CI,
    where shared/ is always laid out: a silent skip there would hide lost coverage."""
    path = REAL_DATA / relative
    if not path.exists():
        reason = f"real Miniscope data missing: {path}"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason} (CI must have shared/real-miniscope)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return path


SMALL_SCOPE = ScopeSpec(
    n_frames=120,
    height=48,
    width=64,
    frames_per_file=50,
    dropped_frames={30: 2},
    zero_quaternion_rows=[0, 1],
)
SMALL_CAMERA = CameraSpec(n_frames=90, height=24, width=32, frames_per_file=40, gaps={20: 1400.0})


@contextmanager
def read_nwb(path: Path) -> Iterator[NWBFile]:
    with NWBHDF5IO(path, "r") as io:
        yield io.read()


TINY = ScopeSpec(n_frames=12, height=16, width=24, frames_per_file=12)


def acquisition(folder: Path, animal: str = "m01", minutes: int = 0, seed: int = 0) -> Path:
    """A tiny scope-only acquisition of `animal`, starting `minutes` after the default start."""
    spec = AcquisitionSpec(
        start=DEFAULT_START + timedelta(minutes=minutes),
        scopes=[replace(TINY, seed=seed)],
        cameras=[],
        animal=animal,
    )
    return write_acquisition(folder, spec).folder


# A V3 cohort (tests/core/daq/test_legacy.py and the Dagster tests of legacy folders).
LATER = LegacySpec(start=LegacySpec().start + timedelta(minutes=10), seed=1, notes=((3, "later"),))


def v3_cohort(raw: Path) -> None:
    """Two V3 sessions (one of two recordings) and a DAQ-QT session beside them."""
    write_legacy_recording(raw / "mouseA")
    write_legacy_recording(raw / "mouseA", LATER)
    write_legacy_recording(raw / "mouseB", replace(LegacySpec(), animal="other"))
    acquisition(raw / "mouseC" / "11_34_45")


# The command line in a process of its own, to interrupt it (test_safety, test_zarr).
CLI = [sys.executable, "-m", "miniscope_core.cli"]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_partial(folder: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not any(p.suffix == ".partial" for p in folder.glob(".*")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the conversion never started writing"
        time.sleep(0.02)


LAB_METADATA = "Subject:\n  species: Mus musculus\n  sex: M\n  age: P90D\n"


def dagster_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A raw and an output root under `tmp_path` as the MINISCOPE_* settings name them, a
    lab-wide metadata file with what DANDI needs of the subject, and no DAGSTER_HOME."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    (tmp_path / "lab.yaml").write_text(LAB_METADATA)
    monkeypatch.setenv("MINISCOPE_RAW_ROOT", str(raw))
    monkeypatch.setenv("MINISCOPE_OUTPUT_ROOT", str(out))
    monkeypatch.setenv("MINISCOPE_METADATA_FILE", str(tmp_path / "lab.yaml"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return raw, out


SERVER_TIMEOUT_S = 10


@contextmanager
def served(root: Path) -> Iterator[str]:
    """`root` served over HTTP on 127.0.0.1 (a free port) by `python -m http.server`, as a lab
    serves its output root; yields the base URL. Stopped by its PID when the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "http.server", "--directory", str(root),
               "--bind", "127.0.0.1", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        while True:
            assert process.poll() is None, f"http.server exited ({process.returncode})"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"http.server not up in {SERVER_TIMEOUT_S} s"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=SERVER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_get(url: str) -> tuple[int, bytes]:
    """The status and body of GET `url`, straight (no proxy from the environment)."""
    with build_opener(ProxyHandler({})).open(url, timeout=SERVER_TIMEOUT_S) as response:
        return response.status, response.read()


BROWSER_TIMEOUT_S = 90


def screenshot(url: str, shot: Path, width: int, height: int) -> np.ndarray:
    """`url` drawn by Debian's headless chromium at width x height, as RGBA floats (0-1)."""
    _chromium([f"--screenshot={shot}"], url, shot.parent, width, height)
    assert shot.exists(), f"chromium wrote no {shot}"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
    assert pixels.shape[:2] == (height, width)
    return pixels


def dump_dom(url: str, folder: Path, width: int, height: int) -> str:
    """The DOM of `url` once headless chromium has loaded it (its scripts run) at width x
    height, serialized as HTML."""
    return _chromium(["--dump-dom"], url, folder, width, height)


def _chromium(args: list[str], url: str, folder: Path, width: int, height: int) -> str:
    """Debian's headless chromium with `args` on `url`, its profile in `folder`; its stdout.
    Chromium missing, the test is skipped locally but fails in CI (a silent skip there would
    hide lost coverage). Chromium runs in its own process group, killed with its helpers if it
    hangs."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}; CI must have it", pytrace=False)
        pytest.skip(reason)
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={folder / 'chromium-profile'}", f"--window-size={width},{height}",
        *args, url,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_S} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode(errors="replace")
