"""How the storage layout of the imaging series serves its readers from a remote archive.

One synthetic session is converted once per layout (frames per chunk), then each file is
served over HTTP on 127.0.0.1 with range requests and a fixed latency added to every request,
and read the way DANDI's storage is read: h5py on fsspec's HTTP file system (aiohttp), with no
cache of fsspec's (`cache_type="none"`), so every read HDF5 makes is one range request, as it
is against S3. Per layout: requests, bytes and wall time to (a) open the file and read one
random frame, (b) 100 consecutive frames one at a time as a viewer scrolls (h5py's default
chunk cache, and a 64 MB one), (c) the whole series as an analysis loads it, (d) one pixel's
trace; (e) the conversion's wall time; (f) the files a Zarr store holds per hour of recording.

A remote archive is modelled as `--model-ms` per request plus `--model-mb-s` of bandwidth (S3
from a laptop: ~30 ms and ~50 MB/s); each figure's modelled time comes from its measured
requests and bytes, beside the wall time measured here with `--latency-ms` added per request.

    .venv/bin/python bench/read_layouts.py --json /tmp/layouts.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SERIES = "acquisition/OnePhotonSeriesMiniscope/data"
NEUROCONV = 27  # NeuroConv's chunks for 608x608 uint8 frames: (27, 608, 608), ~10 MB
LAYOUTS = (1, 2, 4, 8, 16, NEUROCONV, 32, 64)
HOUR_FRAMES = 30 * 3600  # one hour at 30 Hz
SCROLL = 100
Record = dict[str, Any]


# ---------------------------------------------------------------- the archive on 127.0.0.1


@dataclass
class Traffic:
    """What the server answered: requests and body bytes, counted under a lock."""

    requests: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n_bytes: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += n_bytes

    def take(self) -> tuple[int, int]:
        with self.lock:
            seen = self.requests, self.bytes
            self.requests = self.bytes = 0
        return seen


def _handler(root: Path, latency_s: float, traffic: Traffic) -> type[SimpleHTTPRequestHandler]:
    class RangeHandler(SimpleHTTPRequestHandler):
        """Files under `root`, whole or by one `Range: bytes=a-b`, each answer `latency_s` late."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *_args: Any) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            time.sleep(latency_s)
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                traffic.add(0)
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            size = path.stat().st_size
            start, stop = 0, size
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes="):
                first, _, last = wanted[6:].partition("-")
                start = int(first or 0)
                stop = min(size, int(last) + 1) if last else size
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            else:
                self.send_response(HTTPStatus.OK)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(stop - start))
            self.end_headers()
            traffic.add(stop - start if body else 0)
            if body:
                with open(path, "rb") as file:
                    file.seek(start)
                    self.wfile.write(file.read(stop - start))

    return RangeHandler


@contextmanager
def archive(root: Path, latency_s: float) -> Iterator[tuple[str, Traffic]]:
    """An HTTP server of `root` on 127.0.0.1: its base URL and its traffic counter."""
    traffic = Traffic()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, latency_s, traffic))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", traffic
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- reading as DANDI's users do


@contextmanager
def remote_series(url: str, cache_mb: float | None = None) -> Iterator[Any]:
    """The series' dataset through h5py on fsspec's HTTP file, every read one request."""
    import fsspec
    import h5py

    fs = fsspec.filesystem("http")
    with fs.open(url, "rb", cache_type="none") as remote:
        kwargs = {"rdcc_nbytes": int(cache_mb * 2**20)} if cache_mb else {}
        with h5py.File(remote, "r", **kwargs) as h5:
            yield h5[SERIES]


def read_patterns(url: str, traffic: Traffic, n_frames: int, seed: int) -> Record:
    """Each access pattern on a freshly opened file (nothing cached from the one before); the
    opening itself (the same for every pattern) is counted apart, as `open`."""
    rng = random.Random(seed)
    frame, start = rng.randrange(n_frames), rng.randrange(n_frames - SCROLL)
    pixel = rng.randrange(608), rng.randrange(608)
    with remote_series(url):  # imports and the first connection, charged to no pattern
        pass
    results: Record = {}

    def opened(name: str, read: Callable[[Any], Any], cache_mb: float | None = None) -> None:
        traffic.take()
        began = time.perf_counter()
        with remote_series(url, cache_mb) as data:
            requests, n_bytes = traffic.take()
            results.setdefault("open", {"requests": requests, "bytes": n_bytes,
                                        "seconds": time.perf_counter() - began})  # fmt: skip
            began = time.perf_counter()
            read(data)
            seconds = time.perf_counter() - began
        requests, n_bytes = traffic.take()
        results[name] = {"requests": requests, "bytes": n_bytes, "seconds": seconds}

    opened("frame", lambda data: data[frame])
    opened("scroll", lambda data: [data[i] for i in range(start, start + SCROLL)])
    opened("scroll_64mb", lambda data: [data[i] for i in range(start, start + SCROLL)], 64)
    opened("series", lambda data: data[:])
    opened("pixel", lambda data: data[:, pixel[0], pixel[1]])
    return results


# ---------------------------------------------------------------- writing each layout


def make_session(root: Path, acquisitions: int, frames: int) -> None:
    from miniscope_core.testing.synthetic import ScopeSpec, write_session

    scope = ScopeSpec(n_frames=frames, height=608, width=608, codec="FFV1", frames_per_file=1000)
    write_session(root, n_acquisitions=acquisitions, scope=scope, cameras=[])


def convert(session: Path, output: Path, per_chunk: int, backend: str = "hdf5") -> float:
    """Wall seconds of the default conversion (no QC report) into `per_chunk` frames a chunk."""
    from miniscope_core import ConversionOptions, convert_session

    options = ConversionOptions(frames_per_chunk=per_chunk, report=False, backend=backend)
    if output.exists():
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    began = time.perf_counter()
    convert_session(session, output, options)
    return time.perf_counter() - began


def zarr_files(session: Path, work: Path, per_chunk: int, n_frames: int) -> Record:
    """Files and depth of the Zarr store, and the files an hour of recording would take."""
    store = work / f"k{per_chunk}.nwb.zarr"
    convert(session, store, per_chunk, backend="zarr")
    paths = [p for p in store.rglob("*") if p.is_file()]
    data = store / SERIES
    chunk_files = sum(1 for p in data.iterdir() if not p.name.startswith("."))
    depth = max(len(p.relative_to(store).parts) for p in paths)
    shutil.rmtree(store)
    hour = len(paths) - chunk_files + math.ceil(HOUR_FRAMES / per_chunk)
    return {"files": len(paths), "chunk_files": chunk_files, "depth": depth, "hour_files": hour,
            "frames": n_frames}  # fmt: skip


# ---------------------------------------------------------------- the run and its tables


def modelled(record: Record, ms: float, mb_s: float) -> float:
    return record["requests"] * ms / 1000 + record["bytes"] / (mb_s * 1e6)


def run(args: argparse.Namespace, work: Path) -> Record:
    session = work / "session"
    make_session(session, args.acquisitions, args.frames)
    n_frames = args.acquisitions * args.frames
    served = work / "served"
    served.mkdir()
    writes: dict[int, list[float]] = {k: [] for k in args.layouts}
    for round_ in range(args.repeat):  # interleaved: the machine's drift hits every layout
        for k in args.layouts if round_ % 2 == 0 else reversed(args.layouts):
            writes[k].append(convert(session, served / f"k{k}.nwb", k))
    results: Record = {"load_before": os.getloadavg(), "frames": n_frames, "layouts": {}}
    with archive(served, args.latency_ms / 1000) as (base, traffic):
        for k in args.layouts:
            path = served / f"k{k}.nwb"
            reads = read_patterns(f"{base}/{path.name}", traffic, n_frames, args.seed)
            size = path.stat().st_size
            results["layouts"][k] = {"write_s": min(writes[k]), "writes_s": writes[k],
                                     "file_bytes": size, "reads": reads}  # fmt: skip
    for k in args.layouts:
        if args.zarr:
            results["layouts"][k]["zarr"] = zarr_files(session, work, k, n_frames)
    results["load_after"] = os.getloadavg()
    return results


PATTERNS = {
    "frame": "(a) one frame",
    "scroll": f"(b) {SCROLL} frames scrolled",
    "scroll_64mb": f"(b) {SCROLL} frames, 64 MB cache",
    "series": "(c) whole series",
    "pixel": "(d) one pixel's trace",
}


def _name(k: int) -> str:
    return f"{k} (NeuroConv's)" if k == NEUROCONV else str(k)


def tables(results: Record, ms: float, mb_s: float) -> str:
    layouts = results["layouts"]
    lines = ["| frames per chunk | " + " | ".join(PATTERNS.values()) + " |",
             "|---|" + "---:|" * len(PATTERNS)]  # fmt: skip
    best = {p: min(modelled(v["reads"][p], ms, mb_s) for v in layouts.values()) for p in PATTERNS}
    worst: dict[str, float] = {}
    for k, v in layouts.items():
        cells = []
        for p in PATTERNS:
            r = v["reads"][p]
            model = modelled(r, ms, mb_s)
            cells.append(f"{r['requests']} req, {r['bytes'] / 1e6:.1f} MB, {r['seconds']:.2f} s"
                         f" / model {model:.2f} s ({model / best[p]:.1f}x)")  # fmt: skip
            if p != "scroll_64mb":
                worst[k] = max(worst.get(k, 0), model / best[p])
        lines.append(f"| {_name(int(k))} | " + " | ".join(cells) + " |")
    lines += ["", "| frames per chunk | open | worst pattern vs its best layout (model) | "
              "write s (each run) | vs 1 frame per chunk | file MB | Zarr files (depth) | "
              "Zarr files per hour |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    today = layouts[min(layouts, key=int)]["write_s"]
    for k, v in layouts.items():
        opening = v["reads"]["open"]
        zarr = v.get("zarr")
        zarr_cells = (f"{zarr['files']} ({zarr['depth']})", f"{zarr['hour_files']:,}") if zarr \
            else ("-", "-")  # fmt: skip
        runs = ", ".join(f"{s:.1f}" for s in v["writes_s"])
        lines.append(
            f"| {_name(int(k))} | {opening['requests']} req, {opening['seconds']:.2f} s | "
            f"{worst[k]:.2f}x | {v['write_s']:.1f} ({runs}) | {v['write_s'] / today - 1:+.1%} | "
            f"{v['file_bytes'] / 1e6:.0f} | {zarr_cells[0]} | {zarr_cells[1]} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquisitions", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300, help="per acquisition")
    parser.add_argument("--layouts", type=int, nargs="+", default=list(LAYOUTS))
    parser.add_argument("--latency-ms", type=float, default=30.0, help="added to each request")
    parser.add_argument("--model-ms", type=float, default=30.0)
    parser.add_argument("--model-mb-s", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=2, help="conversions per layout")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--no-zarr", dest="zarr", action="store_false")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.work_dir) as folder:
        results = run(args, Path(folder))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    print(tables(results, args.model_ms, args.model_mb_s))


if __name__ == "__main__":
    main()
