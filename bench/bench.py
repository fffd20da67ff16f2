"""Benchmark of the Miniscope -> NWB conversion: speed, memory, roofline and NeuroConv.

Every conversion runs in a fresh interpreter (this file with --worker) so that its peak RSS is
its own. The NeuroConv worker runs in NeuroConv's interpreter, which may not have this project
installed, so module level imports only the standard library. bench/README.md defines each
figure and quotes a run.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Check = tuple[str, bool]  # a target's text and whether it was met

CAMERA_SIZE = (640, 480)  # behaviour webcam (width, height), MJPG as the DAQ records it
FRAMES_PER_FILE = 1000  # the DAQ's default video split
DEFAULT_CONFIG = "isal 2"
OURS_CONFIGS = {DEFAULT_CONFIG: ("isal", 2), "zlib 4": ("zlib", 4), "zlib 1": ("zlib", 1)}
NEUROCONV_LEVEL = 4  # h5py's gzip default, which NeuroConv keeps
SAMPLE_SECONDS = 0.02  # how often the children's RSS is sampled
TARGET_SPEEDUP, TARGET_RSS_MB, TARGET_ROOFLINE = 3.0, 300.0, 0.80
TARGET_DEFAULT_ROOFLINE = 0.90  # issue 8: the default conversion within 10 % of the machine
TARGET_PYTHON_RSS_MB = 150.0  # issue 8: the converter's own process, at every session length
TARGET_VERIFY_SHARE = 0.03  # read-back verification, share of the conversion time
SAME_RSS_TOLERANCE = 0.10  # "the same" peak RSS for 1 and N acquisitions: within 10 %
TARGET_QC_SHARE = 0.05  # issue 18: the QC statistics slow the conversion by at most 5 %
TARGET_LAYOUT_SHARE = 0.05  # issue 21: the default layout at most 5 % slower than 1 frame a chunk
MB = 1024 * 1024


# ---------------------------------------------------------------- worker (any interpreter)


def _status(pid: str) -> dict[str, str]:
    """/proc/<pid>/status as a dict; empty once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return {}


def _kb(status: dict[str, str], field: str) -> int:
    return int(status.get(field, "0 kB").split()[0])


def _children() -> list[str]:
    pids: list[str] = []
    for path in glob.glob("/proc/self/task/*/children"):
        with open(path) as children:
            pids += children.read().split()
    return pids


class ChildPeak:
    """Peak RSS of the child processes (ffmpeg for us) alive at once, sampled from /proc.

    Each sample adds up the high-water marks (VmHWM) of the children alive then: an upper bound,
    since processes of one binary share its code pages, counted here once per process.
    RUSAGE_CHILDREN is no use here: a child made by (v)fork + exec inherits the parent's
    high-water mark, so it reports the Python process's RSS, not ffmpeg's. For the same reason
    a child is skipped until it has exec'd (while it still has our name it shares our memory).
    """

    def __init__(self) -> None:
        self.peak_kb = 0
        self._name = _status("self")["Name"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            children = [_status(pid) for pid in _children()]
            together = sum(
                _kb(status, "VmHWM")
                for status in children
                if status.get("Name", self._name) != self._name
            )
            self.peak_kb = max(self.peak_kb, together)


def _measure(convert: Callable[[], None]) -> Record:
    """Wall time and memory of `convert()`, after the imports it needs have been done.

    Peak RSS is VmHWM, not ru_maxrss: ru_maxrss of an exec'd process starts at its parent's
    high-water mark, which would charge the benchmark's own memory to the conversion.
    """
    import_kb = _kb(_status("self"), "VmRSS")
    with ChildPeak() as children:
        began = time.perf_counter()
        convert()
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "import_rss_mb": import_kb / 1024,
        "peak_rss_mb": _kb(_status("self"), "VmHWM") / 1024,
        "children_peak_rss_mb": children.peak_kb / 1024,
    }


def _ours_worker(spec: Record) -> Record:
    """Our conversion (read-back verification and the QC report included, as by default),
    the time its QC report took after the file was complete, then the verification once more
    on its own, to report its share of the conversion time."""
    from miniscope_core import ConversionOptions, convert_session
    from miniscope_core.pipeline import convert as pipeline
    from miniscope_core.verify.validate import verify_nwb

    layout = {"frames_per_chunk": spec["frames_per_chunk"]} if spec["frames_per_chunk"] else {}
    options = ConversionOptions(
        deflate_engine=spec["engine"], compression_level=spec["level"], stub=spec["stub"],
        report=spec["report"], **layout,
    )  # fmt: skip
    output = Path(spec["output"])
    qc, page = _timed(pipeline, "session_qc"), _timed(pipeline, "_written_report")
    measured = _measure(lambda: convert_session(spec["session"], output, options))
    began = time.perf_counter()
    if not verify_nwb(output).passed:
        raise RuntimeError(f"{output} does not read back as written")
    verify = time.perf_counter() - began
    return {**measured, "verify_seconds": verify, "report_seconds": sum(qc) + sum(page)}


def _timed(module: Any, name: str) -> list[float]:
    """Instrument `module.name`: the seconds of each call, appended to the list returned."""
    spent: list[float] = []
    inner = getattr(module, name)

    def run(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    setattr(module, name, run)
    return spent


def _neuroconv_worker(spec: Record) -> Record:
    from neuroconv.converters import MiniscopeConverter
    from neuroconv.tools.nwb_helpers import configure_and_write_nwbfile

    def convert() -> None:
        converter = MiniscopeConverter(
            folder_path=spec["session"], user_configuration_file_path=spec["config"]
        )
        nwbfile = converter.create_nwbfile(metadata=converter.get_metadata())
        backend = converter.get_default_backend_configuration(nwbfile, backend="hdf5")
        for dataset in backend.dataset_configurations.values():
            where = dataset.location_in_file
            if "OnePhotonSeries" in where and where.endswith("/data"):
                dataset.compressors = ["gzip"]
                dataset.compressor_options = [{"level": spec["level"]}]
        configure_and_write_nwbfile(
            nwbfile, nwbfile_path=spec["output"], backend_configuration=backend
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter, not what is measured
        return _measure(convert)


def worker(spec: Record) -> None:
    """Run one conversion and print its measures as the last line of stdout (JSON)."""
    run = _ours_worker if spec["kind"] == "ours" else _neuroconv_worker
    print(json.dumps(run(spec)))


# ---------------------------------------------------------------- session and conversions


def make_session(
    root: Path, acquisitions: int, frames: int, size: int, camera: bool, codec: str = "FFV1"
) -> None:
    """A DAQ-QT session in NeuroConv's legacy layout: FFV1 (or GREY, uncompressed, as most real
    scopes record) imaging, optional MJPG webcam."""
    from miniscope_core.testing.synthetic import CameraSpec, ScopeSpec, write_session

    scope = ScopeSpec(
        n_frames=frames, height=size, width=size, codec=codec, frames_per_file=FRAMES_PER_FILE
    )
    width, height = CAMERA_SIZE
    roi = {"height": height, "leftEdge": 0, "topEdge": 0, "width": width}
    cameras = [CameraSpec(n_frames=frames, height=height, width=width, codec="MJPG", roi=roi)]
    write_session(root, n_acquisitions=acquisitions, scope=scope, cameras=cameras if camera else [])


def session_videos(root: Path, device: str) -> list[Path]:
    return sorted(root.glob(f"*/{device}/*.avi"))


def neuroconv_config(session: Path, target: Path) -> Path:
    """The DAQ's User Config NeuroConv needs (its legacy mode fails on `ewl`, see README)."""
    cameras = {p.name: {} for p in session.glob("*/BehavCam*") if p.is_dir()}
    config = {"directoryStructure": ["time"], "devices": {"miniscopes": {"Miniscope": {}}}}
    config["devices"]["cameras"] = cameras
    target.write_text(json.dumps(config, indent=4))
    return target


def run_worker(python: str, spec: Record) -> Record:
    """One conversion in a fresh interpreter, into a new file as a user converts (replacing a
    700 MB file would add the file system's cost of freeing the old one), its QC report too."""
    Path(spec["output"]).unlink(missing_ok=True)
    Path(spec["output"] + ".qc.html").unlink(missing_ok=True)
    command = [python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{spec['kind']} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def convert(python: str, spec: Record, repeat: int) -> Record:
    """Best wall time of `repeat` runs (the machine may be shared) and their worst memory."""
    runs = [run_worker(python, spec) for _ in range(repeat)]
    best = min(runs, key=lambda run: run["seconds"])
    for key in ("peak_rss_mb", "children_peak_rss_mb"):
        best[key] = max(run[key] for run in runs)
    best.update(describe_output(Path(spec["output"])))
    best["fps"] = best["frames"] / best["seconds"]
    return best


def photon_series(h5: Any) -> list[Any]:
    """The OnePhotonSeries data datasets of an open NWB file, in recording order."""
    found = [
        group
        for group in h5["acquisition"].values()
        if group.attrs.get("neurodata_type") == "OnePhotonSeries"
    ]
    found.sort(key=lambda group: float(group["timestamps"][0]))
    return [group["data"] for group in found]


def describe_output(path: Path) -> Record:
    """Frames, size and the stored layout and deflate level of the imaging series."""
    import h5py

    with h5py.File(path, "r") as h5:
        data = photon_series(h5)
        return {
            "frames": sum(d.shape[0] for d in data),
            "series": len(data),
            "shape": list(data[0].shape[1:]),
            "chunks": list(data[0].chunks),
            "filter": f"{data[0].compression} {data[0].compression_opts}",
            "size_mb": path.stat().st_size / MB,
        }


def _read_span(datasets: list[Any], start: int, stop: int) -> Any:
    """Frames start..stop-1 of datasets concatenated along time."""
    import numpy as np

    parts, offset = [], 0
    for data in datasets:
        low, high = max(start - offset, 0), min(stop - offset, data.shape[0])
        if low < high:
            parts.append(data[low:high])
        offset += data.shape[0]
    return np.concatenate(parts)


def compare_pixels(ours: Path, theirs: Path) -> str:
    """'identical' or where the first difference is, reading NeuroConv's file chunk by chunk."""
    import h5py
    import numpy as np

    with h5py.File(ours, "r") as mine_file, h5py.File(theirs, "r") as their_file:
        mine, their = photon_series(mine_file), photon_series(their_file)
        total = sum(d.shape[0] for d in mine)
        offset = 0
        for data in their:
            if data.shape[1:] != mine[0].shape[1:]:
                return f"frame shapes differ: {data.shape[1:]} vs ours {mine[0].shape[1:]}"
            step = data.chunks[0]
            for start in range(0, data.shape[0], step):
                block = data[start : start + step]
                at = offset + start
                if not np.array_equal(block, _read_span(mine, at, at + len(block))):
                    return f"differ in frames {at}..{at + len(block) - 1}"
            offset += data.shape[0]
        return "identical" if offset == total else f"{offset} frames vs ours {total}"


# ---------------------------------------------------------------- roofline


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def decode_seconds(videos: list[Path], threads: int, together: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds for the bundled ffmpeg to decode `videos` to nothing.

    `together` decoders run at once: each wave decodes video i beside videos i+1, ..., so that
    every video is decoded `together` times and every core decodes, as in a conversion.
    """
    import imageio_ffmpeg

    wall = cpu = 0.0
    for first in range(len(videos)):
        commands = []
        for video in (videos[(first + k) % len(videos)] for k in range(together)):
            command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error"]
            command += ["-threads", str(threads), "-i", str(video), "-map", "0:v:0"]
            commands.append([*command, "-f", "null", "-"])
        began, cpu_began = time.perf_counter(), _children_cpu()
        for process in [subprocess.Popen(command) for command in commands]:
            if process.wait() != 0:
                raise RuntimeError(f"ffmpeg failed: {' '.join(commands[0])}")
        wall += time.perf_counter() - began
        cpu += _children_cpu() - cpu_began
    return wall, cpu


def nwb_order(frame: Any) -> Any:
    """(height, width) as decoded -> (width, height) as NWB stores images, in numpy."""
    import numpy as np

    return np.ascontiguousarray(frame.swapaxes(0, 1))


def compress_seconds(frames: list[Any], config: str, together: int = 1) -> float:
    """CPU seconds to reorder and deflate `frames` in one configuration.

    `together` threads each do all of it at once (so every frame `together` times), to measure
    a core's work while every core works, as in a conversion.
    """
    from miniscope_core.encode.deflate import Deflater

    deflate = [Deflater(*OURS_CONFIGS[config])] * together
    with ThreadPoolExecutor(together) as pool:
        return sum(pool.map(_deflate_cpu, [frames] * together, deflate))


def _deflate_cpu(frames: list[Any], deflate: Callable[[Any], bytes]) -> float:
    """This thread's CPU seconds to reorder and deflate `frames`."""
    began = time.thread_time()
    for frame in frames:
        deflate(nwb_order(frame))
    return time.thread_time() - began


def decoded(video: Path) -> list[Any]:
    """Every frame of `video`, as ffmpeg decodes it."""
    from miniscope_core.daq.video import open_video

    return list(open_video(video).frames)


def count_seconds(videos: list[Path]) -> float:
    """What our converter spends counting behaviour-camera frames (a finalised AVI's index)."""
    from miniscope_core.daq.video import count_frames

    began = time.perf_counter()
    for video in videos:
        count_frames(video)
    return time.perf_counter() - began


def roofline(session: Path, frames: int, cores: int) -> Record:
    """The roofline's figures with one core at a time, as runs before 2026-11-27 measured it.

    Frames/s if decoding and deflating kept every core busy and nothing else took time, built
    from CPU time, not wall time, so that other load on the machine does not lower it.
    `loaded_cpu` measures the roofline the targets use, beside each configuration's runs.
    """
    imaging = session_videos(session, "Miniscope")
    one_wall, one_cpu = decode_seconds(imaging, threads=1)
    two_wall, two_cpu = decode_seconds(imaging, threads=2)
    compress = dict.fromkeys(OURS_CONFIGS, 0.0)
    for video in imaging:
        held = decoded(video)
        for config in OURS_CONFIGS:
            compress[config] += compress_seconds(held, config)
    decode_ms = 1000 * one_cpu / frames
    compress_ms = {config: 1000 * seconds / frames for config, seconds in compress.items()}
    return {
        "cores": cores,
        "alone": {
            "decode_ms": decode_ms,
            "compress_ms": compress_ms,
            "fps": {c: roofline_fps(cores, decode_ms, ms) for c, ms in compress_ms.items()},
        },
        "loaded": {},
        "decode_wall_ms": 1000 * one_wall / frames,
        "decode_2threads_wall_ms": 1000 * two_wall / frames,
        "decode_2threads_cpu_ms": 1000 * two_cpu / frames,
        "camera_count_s": count_seconds(session_videos(session, "BehavCam_2")),
    }


def roofline_fps(cores: int, decode_ms: float, compress_ms: float) -> float:
    """Frames/s with decoding and deflating spread perfectly over `cores` (ms CPU per frame)."""
    return 1000 * cores / (decode_ms + compress_ms)


def loaded_cpu(video: Path, held: list[Any], config: str, cores: int) -> Record:
    """ms of CPU per frame to decode, and to reorder and deflate in `config`, every core at once.

    `cores` decoders decode `video` side by side, then `cores` threads deflate its frames
    (`held`) side by side: a core's work while the others work too, as in a conversion.
    """
    _, decode = decode_seconds([video], threads=1, together=cores)
    done = cores * len(held)
    return {
        "decode_ms": 1000 * decode / done,
        "compress_ms": 1000 * compress_seconds(held, config, together=cores) / done,
    }


def finish_roofline(roof: Record) -> None:
    """The roofline of each configuration: the mean of its measures before and after its runs."""
    roof["fps"], roof["decode_ms"], roof["compress_ms"] = {}, {}, {}
    for config, measures in roof["loaded"].items():
        decode = sum(m["decode_ms"] for m in measures) / len(measures)
        compress = sum(m["compress_ms"] for m in measures) / len(measures)
        roof["decode_ms"][config], roof["compress_ms"][config] = decode, compress
        roof["fps"][config] = roofline_fps(roof["cores"], decode, compress)


# ---------------------------------------------------------------- environment


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _versions(python: str, modules: list[str]) -> Record:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def environment(neuroconv_python: str | None) -> Record:
    import imageio_ffmpeg

    ffmpeg = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True)
    packages = ["miniscope-nwb", "h5py", "hdmf", "pynwb", "isal", "numpy", "imageio-ffmpeg"]
    versions = _versions(sys.executable, packages)
    if neuroconv_python:
        nc = ["neuroconv", "roiextractors", "opencv-python-headless", "h5py", "hdmf", "pynwb"]
        versions["neuroconv env"] = _versions(neuroconv_python, nc)
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "ffmpeg": ffmpeg.stdout.decode().splitlines()[0],
        "versions": versions,
    }


def neuroconv_python(requested: str | None) -> str | None:
    """The interpreter to run NeuroConv with, or None (with the reason printed) to skip it."""
    if requested:
        return requested
    if importlib.util.find_spec("neuroconv") is not None:
        return sys.executable
    print("NeuroConv is not importable here: skipped (see bench/README.md, --neuroconv-python).")
    return None


# ---------------------------------------------------------------- the run


@contextmanager
def step(label: str) -> Iterator[None]:
    print(f"... {label}", end="", flush=True)
    began = time.perf_counter()
    yield
    print(f" ({time.perf_counter() - began:.1f} s)", flush=True)


def run_ours(
    session: Path,
    out: Path,
    config: str,
    repeat: int,
    stub: bool = False,
    report: bool = True,
    frames_per_chunk: int | None = None,
) -> Record:
    """Our conversion; `frames_per_chunk` None: the converter's default layout."""
    engine, level = OURS_CONFIGS[config]
    spec = {"kind": "ours", "session": str(session), "output": str(out), "stub": stub}
    spec |= {"report": report, "frames_per_chunk": frames_per_chunk}
    return convert(sys.executable, {**spec, "engine": engine, "level": level}, repeat)


def run_neuroconv(python: str, session: Path, work: Path, repeat: int) -> Record:
    spec = {"kind": "neuroconv", "session": str(session), "level": NEUROCONV_LEVEL}
    spec["config"] = str(neuroconv_config(session, work / "UserConfigFile.json"))
    spec["output"] = str(work / "neuroconv.nwb")
    return {**convert(python, spec, repeat), "output": spec["output"]}


def scaling(args: argparse.Namespace, work: Path) -> dict[str, Record]:
    """Our default configuration on sessions of each size in --scaling (peak RSS vs length)."""
    results = {}
    for count in args.scaling:
        root, out = work / f"scale-{count}", work / f"scale-{count}.nwb"
        with step(f"{count}-acquisition session: generate and convert"):
            make_session(root, count, args.frames, args.size, not args.no_camera)
            results[str(count)] = run_ours(root, out, DEFAULT_CONFIG, args.repeat)
        shutil.rmtree(root)
        out.unlink()
    return results


def _ours_output(work: Path, config: str) -> Path:
    return work / f"ours-{config.replace(' ', '-')}.nwb"


def _neuroconv_part(nc_python: str, session: Path, work: Path, repeat: int) -> Record:
    """NeuroConv's figures and whether its frames equal ours at zlib 4 and by default."""
    with step("NeuroConv MiniscopeConverter"):
        result = run_neuroconv(nc_python, session, work, repeat)
    with step("compare NeuroConv's pixels with ours (zlib 4 and default)"):
        result["pixels"] = {
            config: compare_pixels(_ours_output(work, config), Path(result["output"]))
            for config in ("zlib 4", DEFAULT_CONFIG)
        }
    return result


def layouts(session: Path, work: Path, repeat: int) -> Record:
    """The default layout beside one frame per chunk (the layout before issue 21), each run
    `repeat` times in turn so that the machine's drift hits both alike."""
    runs: dict[str, list[Record]] = {"default": [], "1": []}
    with step(f"ours {DEFAULT_CONFIG}: default layout and 1 frame per chunk, in turn"):
        for _ in range(repeat):
            for name, per_chunk in (("default", None), ("1", 1)):
                out = work / f"ours-layout-{name}.nwb"
                runs[name].append(run_ours(session, out, DEFAULT_CONFIG, 1, report=False,
                                           frames_per_chunk=per_chunk))  # fmt: skip
    return {name: min(done, key=lambda run: run["seconds"]) for name, done in runs.items()}


def grey(args: argparse.Namespace, work: Path, cores: int) -> Record:
    """The default conversion of the same session recorded as GREY (uncompressed AVI), between
    its roofline (reading the AVI through ffmpeg, reordering, deflating) before and after."""
    session = work / "grey"
    with step(f"generate {args.acquisitions} x {args.frames} GREY frames"):
        make_session(session, args.acquisitions, args.frames, args.size, False, codec="GREY")
    sample = session_videos(session, "Miniscope")[0]
    held = decoded(sample)
    with step(f"ours {DEFAULT_CONFIG} on GREY, between its roofline before and after"):
        before = loaded_cpu(sample, held, DEFAULT_CONFIG, cores)
        run = run_ours(session, work / "ours-grey.nwb", DEFAULT_CONFIG, args.repeat)
        after = loaded_cpu(sample, held, DEFAULT_CONFIG, cores)
    shutil.rmtree(session)
    roof = {"cores": cores, "loaded": {DEFAULT_CONFIG: [before, after]}}
    finish_roofline(roof)
    return {"ours": run, "roofline": roof}


def benchmark(args: argparse.Namespace, work: Path, nc_python: str | None) -> Record:
    session = work / "session"
    results: Record = {"args": vars(args), "environment": environment(nc_python)}
    results["load_before"] = os.getloadavg()
    with step(f"generate {args.acquisitions} x {args.frames} frames {args.size}x{args.size}"):
        make_session(session, args.acquisitions, args.frames, args.size, not args.no_camera)
    frames, cores = args.acquisitions * args.frames, len(os.sched_getaffinity(0))
    with step("roofline, one core at a time (as earlier runs measured it)"):
        roof = results["roofline"] = roofline(session, frames, cores)
    sample = session_videos(session, "Miniscope")[0]
    held = decoded(sample)
    results["ours"] = {}
    for config in OURS_CONFIGS:
        with step(f"ours {config}, between its roofline before and after (every core at once)"):
            before = loaded_cpu(sample, held, config, cores)
            output = _ours_output(work, config)
            results["ours"][config] = run_ours(session, output, config, args.repeat)
            roof["loaded"][config] = [before, loaded_cpu(sample, held, config, cores)]
    del held
    finish_roofline(roof)
    with step(f"ours {DEFAULT_CONFIG} --no-report: no QC statistics gathered, no report"):
        output = work / "ours-no-report.nwb"
        results["no_report"] = run_ours(session, output, DEFAULT_CONFIG, args.repeat, report=False)
    with step(f"ours {DEFAULT_CONFIG}, stub run"):
        stub = work / "ours-stub.nwb"
        results["stub"] = run_ours(session, stub, DEFAULT_CONFIG, args.repeat, stub=True)
    results["layouts"] = layouts(session, work, args.repeat)
    if nc_python:
        results["neuroconv"] = _neuroconv_part(nc_python, session, work, args.repeat)
    shutil.rmtree(session)
    results["grey"] = grey(args, work, cores)
    results["scaling"] = scaling(args, work)
    results["load_after"] = os.getloadavg()
    return results


# ---------------------------------------------------------------- report


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, figures right-aligned."""
    lines = [headers, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    lines.insert(1, ["-" * width for width in widths])
    return "\n".join(
        "  ".join(
            [line[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        )
        for line in lines
    )


def _conversion_row(name: str, run: Record, roof_fps: float | None) -> list[str]:
    share = f"{100 * run['fps'] / roof_fps:.0f} %" if roof_fps else "-"
    return [
        name,
        str(run["frames"]),
        f"{run['seconds']:.1f}",
        f"{run['fps']:.0f}",
        share,
        f"{run['peak_rss_mb']:.0f}",
        f"{run['children_peak_rss_mb']:.0f}",
        f"{run['import_rss_mb']:.0f}",
        f"{run['size_mb']:.0f}",
        f"{run['series']} x {run['filter']} chunks {tuple(run['chunks'])}",
    ]


def conversions_table(results: Record) -> str:
    headers = ["conversion", "frames", "wall s", "frames/s", "roofline", "peak RSS MB"]
    headers += ["children MB", "import MB", "output MB", "imaging series stored as"]
    roof = results["roofline"]["fps"]
    rows = [_conversion_row(f"ours {c}", run, roof[c]) for c, run in results["ours"].items()]
    if "no_report" in results:
        name = f"ours {DEFAULT_CONFIG} --no-report"
        rows.append(_conversion_row(name, results["no_report"], roof[DEFAULT_CONFIG]))
    if "stub" in results:
        rows.append(_conversion_row(f"ours {DEFAULT_CONFIG} --stub", results["stub"], None))
    for name, run in results.get("layouts", {}).items():
        label = "default layout" if name == "default" else f"{name} frame per chunk"
        rows.append(_conversion_row(f"ours {DEFAULT_CONFIG} --no-report, {label}", run, None))
    if "grey" in results:
        grey_roof = results["grey"]["roofline"]["fps"][DEFAULT_CONFIG]
        rows.append(_conversion_row(f"ours {DEFAULT_CONFIG}, GREY", results["grey"]["ours"],
                                    grey_roof))  # fmt: skip
    if "neuroconv" in results:
        rows.append(_conversion_row("NeuroConv gzip 4", results["neuroconv"], None))
    return _table(headers, rows)


def loaded_text(roof: Record, codec: str) -> list[str]:
    """Each configuration's roofline, every core at once, before and after its runs."""
    lines = []
    cores = roof["cores"]
    for config, (before, after) in roof["loaded"].items():
        decode, compress = roof["decode_ms"][config], roof["compress_ms"][config]
        lines.append(
            f"  {config}: {codec} decode -threads 1 {decode:.2f} ms CPU/frame (before "
            f"{before['decode_ms']:.2f}, after {after['decode_ms']:.2f}) + reorder and deflate "
            f"{compress:.2f} (before {before['compress_ms']:.2f}, after "
            f"{after['compress_ms']:.2f}) -> roofline {cores} / ({decode:.2f} + {compress:.2f}"
            f" ms) = {roof['fps'][config]:.0f} frames/s"
        )
    return lines


def roofline_text(roof: Record) -> str:
    alone = roof["alone"]
    lines = ["every core at once, measured right before and right after each configuration's runs:"]
    lines += loaded_text(roof, "FFV1")
    lines.append(
        f"one core at a time (the roofline of earlier runs): decode {alone['decode_ms']:.2f} ms"
        f" CPU/frame ({roof['decode_wall_ms']:.2f} ms wall); -threads 2: "
        f"{roof['decode_2threads_cpu_ms']:.2f} ms CPU/frame ({roof['decode_2threads_wall_ms']:.2f}"
        " ms wall)"
    )
    for name, ms in alone["compress_ms"].items():
        lines.append(
            f"  reorder + deflate {name}: {ms:.2f} ms CPU/frame -> "
            f"{alone['fps'][name]:.0f} frames/s"
        )
    lines.append(
        f"not in the roofline: our counting of behaviour-camera frames "
        f"({roof['camera_count_s']:.3f} s)"
    )
    return "\n".join(lines)


def scaling_table(results: Record) -> str:
    headers = ["acquisitions", "frames", "wall s", "frames/s", "peak RSS MB", "children MB"]
    rows = [
        [
            count,
            str(run["frames"]),
            f"{run['seconds']:.1f}",
            f"{run['fps']:.0f}",
            f"{run['peak_rss_mb']:.0f}",
            f"{run['children_peak_rss_mb']:.0f}",
        ]
        for count, run in results["scaling"].items()
    ]
    return _table(headers, rows)


def _speed_target(results: Record) -> Check:
    """Ours at zlib 4 against NeuroConv at gzip 4, and the most the roofline allows."""
    nc, ours = results["neuroconv"], results["ours"]
    ratio = ours["zlib 4"]["fps"] / nc["fps"]
    bound = results["roofline"]["fps"]["zlib 4"] / nc["fps"]
    default = ours[DEFAULT_CONFIG]["fps"] / nc["fps"]
    pixels = ", ".join(f"{verdict} to ours {c}" for c, verdict in nc["pixels"].items())
    text = (
        f">= {TARGET_SPEEDUP:.0f}x NeuroConv's frames/s at gzip 4: {ratio:.2f}x (roofline bound"
        f" at zlib 4: {bound:.2f}x; ours default: {default:.2f}x); pixels {pixels}"
    )
    same = all(verdict == "identical" for verdict in nc["pixels"].values())
    return text, same and ratio >= TARGET_SPEEDUP


def _memory_targets(results: Record) -> list[Check]:
    runs = [results["ours"][DEFAULT_CONFIG], *results["scaling"].values()]
    worst = max(run["peak_rss_mb"] + run["children_peak_rss_mb"] for run in runs)
    text = f"peak RSS, Python + child, < {TARGET_RSS_MB:.0f} MB at every size: worst {worst:.0f} MB"
    checks = [(text, worst < TARGET_RSS_MB)]
    python = max(run["peak_rss_mb"] for run in runs)
    text = f"peak RSS of the converter's process < {TARGET_PYTHON_RSS_MB:.0f} MB at every size: "
    checks.append((text + f"worst {python:.0f} MB", python < TARGET_PYTHON_RSS_MB))
    peaks = [run["peak_rss_mb"] for run in results["scaling"].values()]
    if len(peaks) > 1:
        spread = (max(peaks) - min(peaks)) / min(peaks)
        sizes = " and ".join(results["scaling"])
        text = f"same peak RSS for {sizes} acquisitions (within {SAME_RSS_TOLERANCE:.0%}): "
        checks.append((text + f"{spread:+.1%}", spread <= SAME_RSS_TOLERANCE))
    return checks


def _verify_target(results: Record) -> Check:
    run = results["ours"][DEFAULT_CONFIG]
    share = run["verify_seconds"] / run["seconds"]
    text = (
        f"read-back verification < {TARGET_VERIFY_SHARE:.0%} of the conversion, ours "
        f"{DEFAULT_CONFIG}: {run['verify_seconds']:.2f} s of {run['seconds']:.1f} s = {share:.1%}"
    )
    return text, share < TARGET_VERIFY_SHARE


def targets(results: Record) -> list[Check]:
    """The issues' targets, each with whether this run met it."""
    checks = [_speed_target(results)] if "neuroconv" in results else []
    checks += [_verify_target(results), *_memory_targets(results)]
    for config, run in results["ours"].items():
        share = run["fps"] / results["roofline"]["fps"][config]
        alone = run["fps"] / results["roofline"]["alone"]["fps"][config]
        target = TARGET_DEFAULT_ROOFLINE if config == DEFAULT_CONFIG else TARGET_ROOFLINE
        text = f">= {target:.0%} of roofline, ours {config}: {share:.0%} ({alone:.0%} alone)"
        checks.append((text, share >= target))
    if "grey" in results:
        run, roof = results["grey"]["ours"], results["grey"]["roofline"]["fps"][DEFAULT_CONFIG]
        share = run["fps"] / roof
        text = f">= {TARGET_DEFAULT_ROOFLINE:.0%} of roofline, ours {DEFAULT_CONFIG} on GREY"
        checks.append((f"{text}: {share:.0%}", share >= TARGET_DEFAULT_ROOFLINE))
    if "layouts" in results:
        default, one = (results["layouts"][name]["seconds"] for name in ("default", "1"))
        text = f"default layout <= {TARGET_LAYOUT_SHARE:.0%} slower than 1 frame per chunk"
        checks.append(
            (f"{text}: {default / one - 1:+.1%}", default / one - 1 <= TARGET_LAYOUT_SHARE)
        )
    cost = qc_cost(results)
    if cost is not None:
        share, (with_report, without) = cost["statistics_share"], cost["peak_rss_mb"]
        text = f"<= {TARGET_QC_SHARE:.0%} slower with the QC statistics: {share:+.1%}"
        checks.append((text, share <= TARGET_QC_SHARE))
        text = (f"no more memory with the QC report: {with_report:.0f} vs {without:.0f} MB"
                f" ({with_report - without:+.0f} MB)")  # fmt: skip
        checks.append((text, with_report <= without))  # the words: no tolerance
    return checks


def qc_cost(results: Record) -> Record | None:
    """What the QC report costs the default conversion: its statistics while decoding (the NWB
    file ready later, against --no-report), the page after it, and memory."""
    if "no_report" not in results:
        return None
    full, bare = results["ours"][DEFAULT_CONFIG], results["no_report"]
    ready = full["seconds"] - full["report_seconds"]
    return {
        "nwb_ready_seconds": ready,
        "no_report_seconds": bare["seconds"],
        "statistics_share": ready / bare["seconds"] - 1,
        "report_seconds": full["report_seconds"],
        "peak_rss_mb": [full["peak_rss_mb"], bare["peak_rss_mb"]],
    }


def qc_text(results: Record) -> list[str]:
    cost = qc_cost(results)
    if cost is None:
        return []
    with_report, without = cost["peak_rss_mb"]
    return [
        f"\nQC report, ours {DEFAULT_CONFIG}: the NWB file complete after "
        f"{cost['nwb_ready_seconds']:.1f} s with the statistics gathered while decoding, "
        f"{cost['no_report_seconds']:.1f} s without ({100 * cost['statistics_share']:+.1f} %); "
        f"the page {cost['report_seconds']:.1f} s after it; peak RSS {with_report:.0f} MB "
        f"against {without:.0f} MB"
    ]


def report(results: Record) -> str:
    env, args = results["environment"], results["args"]
    camera = "" if args["no_camera"] else f" + {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} MJPG webcam"
    parts = [
        f"\nMiniscope -> NWB benchmark, {env['date']}",
        f"{env['cpu']}, {env['cores']} cores, Python {env['python']}, {env['ffmpeg']}",
        f"versions: {json.dumps(env['versions'])}",
        f"1-min load average before/after: {results['load_before'][0]:.2f}"
        f" / {results['load_after'][0]:.2f}",
        f"session: {args['acquisitions']} acquisitions x {args['frames']} frames, "
        f"{args['size']}x{args['size']} FFV1 gray{camera}; best of {args['repeat']} run(s)\n",
        conversions_table(results),
        *qc_text(results),
        "\nRoofline (" + str(results["roofline"]["cores"]) + " cores)",
        roofline_text(results["roofline"]),
        *(
            [
                "GREY, every core at once, before and after its runs:",
                *loaded_text(results["grey"]["roofline"], "GREY"),
            ]
            if "grey" in results
            else []
        ),
        "\nMemory scaling, ours " + DEFAULT_CONFIG,
        scaling_table(results),
        "\nTargets",
        *(f"[{'PASS' if ok else 'FAIL'}] {text}" for text, ok in targets(results)),
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquisitions", type=int, default=3)
    parser.add_argument("--frames", type=int, help="per acquisition (1000; 100 with --quick)")
    parser.add_argument("--size", type=int, default=608, help="frame height and width")
    parser.add_argument(
        "--scaling",
        type=int,
        nargs="+",
        default=[1, 10],
        help="acquisition counts of the memory-scaling runs",
    )
    parser.add_argument("--no-camera", action="store_true", help="no behaviour camera")
    parser.add_argument("--repeat", type=int, default=1, help="runs per conversion; best kept")
    parser.add_argument("--neuroconv-python", help="interpreter with neuroconv[miniscope]")
    parser.add_argument("--quick", action="store_true", help="100 frames per acquisition")
    parser.add_argument("--work-dir", help="where the temporary folder goes (default: system temp)")
    parser.add_argument("--json", help="also save every figure to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.frames = args.frames or (100 if args.quick else 1000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    began = time.perf_counter()
    nc_python = neuroconv_python(args.neuroconv_python)
    work = Path(tempfile.mkdtemp(prefix="miniscope-bench-", dir=args.work_dir))
    try:
        results = benchmark(args, work, nc_python)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["benchmark_seconds"] = time.perf_counter() - began
    print(report(results))
    print(f"\nbenchmark took {results['benchmark_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
