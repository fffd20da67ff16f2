"""Benchmark of listing session folders and of one sensor tick, on synthetic metadata-only trees.

For each size it writes a raw root of N sessions (`mouseNNNN/<day>/<HH_MM_SS>/` with the session
metaData.json, notes.csv, `experiment/`, and `Miniscope/` and `BehavCam_2/` each holding a
metaData.json and a timeStamps.csv; no videos), then times:

- `find_sessions` over it, right after the metaData.json files were dropped from the page cache;
- the file signature of every session: what every tick cost before ticks were incremental;
- one sensor tick with every session already handed over: the sensor's listing plus `review`;
- one tick after a few new sessions appeared, and the next one, in which they are ready.

Everything is written under a temporary folder (`--work-dir` to choose where) and removed at the
end. bench/README.md explains the figures and quotes a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from miniscope_assets.registry import Handover, signature_text
from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.scan import list_sessions
from miniscope_assets.sensors import Cursor, Review, review
from miniscope_core import find_sessions
from miniscope_core.collection.status import Signature, signature

SESSIONS_PER_MOUSE = 100
DEVICES = ("Miniscope", "BehavCam_2")
T = TypeVar("T")


def _session_json(mouse: int, day: int) -> bytes:
    meta = {
        "animalName": f"mouse{mouse:04d}",
        "baseDirectory": f"C:/Users/lab/data/mouse{mouse:04d}/day{day}/10_00_00",
        "cameras": ["BehavCam 2"],
        "experimentName": "bench",
        "miniscopes": ["Miniscope"],
        "researcherName": "lab",
        "recordingStartTime": {
            "year": 2024,
            "month": 1 + day // 28 % 12,
            "day": 1 + day % 28,
            "hour": 10,
            "minute": 0,
            "second": 0,
            "msec": 0,
            "msecSinceEpoch": 1704103200000 + day * 86_400_000,
        },
    }
    return json.dumps(meta, indent=4, sort_keys=True).encode()


_DEVICE_JSON = json.dumps(
    {"deviceName": "Miniscope", "deviceType": "Miniscope_V4_BNO", "framesPerFile": 1000}
).encode()
_TIMESTAMPS = b"Frame Number,Time Stamp (ms),Buffer Index\n" + b"".join(
    b"%d,%d,0\n" % (i, i * 33) for i in range(30)
)


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_mouse(raw: str, mouse: int, n_sessions: int) -> None:
    """One animal's sessions. Each session's metaData.json is its own file (the listing reads
    it); the files nothing reads are hard links to the first session's, which is much faster to
    write (and keeps each inode far below ext4's 65,000 links)."""
    animal = os.path.join(raw, f"mouse{mouse:04d}")
    os.mkdir(animal)
    first = ""
    for day in range(n_sessions):
        acquisition = os.path.join(animal, f"2024_day{day:03d}", "10_00_00")
        os.makedirs(os.path.join(acquisition, "experiment"))
        _write(os.path.join(acquisition, "metaData.json"), _session_json(mouse, day))
        names = ["notes.csv"]
        for device in DEVICES:
            os.mkdir(os.path.join(acquisition, device))
            names += [f"{device}/metaData.json", f"{device}/timeStamps.csv"]
        for name in names:
            target = os.path.join(acquisition, name)
            if first:
                os.link(os.path.join(first, name), target)
            else:
                _write(target, _TIMESTAMPS if name.endswith(".csv") else _DEVICE_JSON)
        first = first or acquisition


def write_tree(raw: Path, n_sessions: int, first_mouse: int = 0) -> None:
    """`n_sessions` sessions, 100 per animal, written by two processes."""
    raw.mkdir(parents=True, exist_ok=True)
    mice = range(-(-n_sessions // SESSIONS_PER_MOUSE))
    counts = [
        min(SESSIONS_PER_MOUSE, n_sessions - i * SESSIONS_PER_MOUSE) for i in range(len(mice))
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        numbers = [first_mouse + i for i in mice]
        list(pool.map(write_mouse, [str(raw)] * len(mice), numbers, counts))


def drop_metadata_from_cache(raw: Path) -> None:
    """Flush, then drop every session metaData.json from the page cache (the folders' entries
    and inodes stay cached: a truly cold cache would need root to drop them for everyone)."""
    os.sync()
    for mouse in os.scandir(raw):
        for day in os.scandir(mouse.path):
            fd = os.open(os.path.join(day.path, "10_00_00", "metaData.json"), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@dataclass(frozen=True)
class Took:
    """Wall and CPU seconds: on a shared machine the wall time also holds other people's load."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall:.2f} s ({self.cpu:.2f})"


def timed(fn: Callable[[], T]) -> tuple[T, Took]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, Took(time.perf_counter() - wall, time.process_time() - cpu)


def measure(work: Path, n_sessions: int, n_new: int) -> dict[str, Any]:
    """Every figure of one tree size."""
    raw = work / f"raw_{n_sessions}"
    # no videos: every session is incomplete, and handed over as long unchanged (stale)
    out = str(work / "out")
    storage = MiniscopeStorage(
        raw_root=str(raw), output_root=out, settle_seconds=0, stale_seconds=0
    )
    _, generate = timed(lambda: write_tree(raw, n_sessions))
    drop_metadata_from_cache(raw)
    folders, find = timed(lambda: find_sessions(raw))
    assert len(folders) == n_sessions

    def old_tick() -> dict[str, Signature]:
        """What every tick did before: list, then read every file of every session."""
        return {k: signature(s.folder, s.acquisitions) for k, s in list_sessions(raw).items()}

    signatures, full = timed(old_tick)
    handed = {key: Handover(signature_text(sig), sig.folders) for key, sig in signatures.items()}

    def tick(cursor: Cursor) -> Review:
        return review(list_sessions(raw), handed, cursor, storage, time.time())

    unchanged, tick_all = timed(lambda: tick(Cursor()))
    write_tree(raw, n_new, first_mouse=9000)  # a new animal's first sessions
    first, tick_new = timed(lambda: tick(Cursor()))
    second, tick_ready = timed(lambda: tick(first.cursor))
    assert unchanged.examined == 0 and len(second.ready) == n_new
    subprocess.run(["rm", "-rf", str(raw)], check=True)  # much faster than shutil.rmtree
    return {
        "sessions": n_sessions,
        "write tree": generate,
        "find_sessions": find,
        "old tick: every file": full,
        "tick, none new": tick_all,
        "tick, new seen": tick_new,
        "tick, new ready": tick_ready,
        "folders read file by file": [unchanged.examined, first.examined, second.examined],
    }


def report(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: wall seconds, CPU seconds of this process in parentheses."""
    headers = [key for key, value in rows[0].items() if isinstance(value, Took)]
    lines = ["| sessions | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for row in rows:
        cells = [f"{row['sessions']:,}", *(str(row[key]) for key in headers)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--new", type=int, default=5, help="new sessions in the last ticks")
    parser.add_argument("--work-dir", help="where the trees are written (default: a temp dir)")
    parser.add_argument("--json", help="also save every figure here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work_dir, prefix="listing-bench-") as work:
        for n_sessions in args.sizes:
            print(f"... {n_sessions:,} sessions", flush=True)
            rows.append(measure(Path(work), n_sessions, args.new))
    load = os.getloadavg()[0]
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(report(rows))
    print(f"\n{cpu} cores, load average {load:.1f} at the end; python {sys.version.split()[0]}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=vars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
