"""Synthetic Miniscope DAQ-QT recordings, written with the real codecs, for tests, bench and demo.

Real videos are too large to ship, so tests pair the DAQ file layout (Qt-style JSON, negative first
time stamps, dropped frames, zero quaternions, `framesPerFile` splits) with frames that are
regenerated exactly from a seed: a decoded video can be compared pixel for pixel.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import imageio_ffmpeg
import numpy as np

Layout = Literal["nested", "flat"]
Roi = dict[str, int]

EASTERN_DAYLIGHT = timezone(timedelta(hours=-4))
DEFAULT_START = datetime(2021, 5, 14, 11, 34, 45, 103000, tzinfo=EASTERN_DAYLIGHT)

_TIMESTAMP_HEADER = "Frame Number,Time Stamp (ms),Buffer Index"
_BNO_TYPE = "Miniscope_V4_BNO"
_DAQ_FPS = 60  # the DAQ software hard-codes 60 in every AVI header
_BLOCK = 256  # frames per block of calcium spikes
_TAU_FRAMES = 30.0  # ~1 s decay at 30 fps
_SPIKE_PROBABILITY = 0.01  # per cell and frame, ~0.3 Hz at 30 fps
_MODEL_STREAM, _SPIKE_STREAM, _FRAME_STREAM, _CAMERA_STREAM = range(4)

# compression FourCC -> (ffmpeg encoder, pix_fmt_out for gray input, for RGB input, extra options)
_CODECS: dict[str, tuple[str, str, str | None, list[str]]] = {
    "FFV1": ("ffv1", "gray", "bgr0", []),
    "GREY": ("rawvideo", "gray", None, []),
    "MJPG": ("mjpeg", "yuvj420p", "yuvj420p", ["-q:v", "3"]),
}


# ---------------------------------------------------------------- frames


@dataclass(frozen=True)
class _Cell:
    rows: slice
    cols: slice
    stamp: np.ndarray  # float32 unit-peak Gaussian blob, cropped to the frame
    baseline: float
    amplitude: float


@dataclass(frozen=True)
class _ImagingModel:
    """Everything that does not change between frames, computed once per movie."""

    background: np.ndarray  # float32 (height, width)
    noise_scale: np.ndarray  # float32 (height, width): shot + read noise std
    noise_bank: np.ndarray  # float32 1-D, > height * width; a frame's noise is a slice of it
    cells: tuple[_Cell, ...]
    drift_period: float
    drift_phase: float


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Vignetted illumination (~90 centre, ~60 corners) with a few broad blotches."""
    y = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (height / 2)
    x = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (width / 2)
    background = 90.0 - 15.0 * (y[:, None] ** 2 + x[None, :] ** 2)
    for _ in range(3):
        fy, fx = rng.uniform(0.5, 2.0, 2) * np.pi
        phase_y, phase_x = rng.uniform(0, 2 * np.pi, 2)
        background += 3.0 * np.cos(fy * y + phase_y)[:, None] * np.cos(fx * x + phase_x)[None, :]
    return background.astype(np.float32)


def _cell(rng: np.random.Generator, height: int, width: int) -> _Cell:
    """A Gaussian blob of radius 4-8 px at a random place, cropped where it leaves the frame."""
    radius = rng.uniform(4, 8)
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    half = math.ceil(2 * radius)
    y0, y1 = max(0, int(cy) - half), min(height, int(cy) + half + 1)
    x0, x1 = max(0, int(cx) - half), min(width, int(cx) + half + 1)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    stamp = np.exp(-(dy**2 + dx**2) / (2 * (radius / 2) ** 2)).astype(np.float32)
    return _Cell(
        rows=slice(y0, y1),
        cols=slice(x0, x1),
        stamp=stamp,
        baseline=rng.uniform(3, 10),
        amplitude=rng.uniform(20, 50),
    )


@lru_cache(maxsize=8)
def _imaging_model(seed: int, height: int, width: int, n_cells: int) -> _ImagingModel:
    rng = np.random.default_rng([seed, _MODEL_STREAM])
    background = _background(rng, height, width)
    cells = tuple(_cell(rng, height, width) for _ in range(n_cells))
    pixels = height * width
    return _ImagingModel(
        background=background,
        noise_scale=(0.6 * np.sqrt(background) + 1.5).astype(np.float32),
        noise_bank=rng.standard_normal(2 * pixels, dtype=np.float32),
        cells=cells,
        drift_period=rng.uniform(600, 1200),
        drift_phase=rng.uniform(0, 2 * np.pi),
    )


def _block_spikes(seed: int, n_cells: int, block: int) -> np.ndarray:
    if block < 0:
        return np.zeros((_BLOCK, n_cells))
    rng = np.random.default_rng([seed, _SPIKE_STREAM, block])
    fires = rng.random((_BLOCK, n_cells)) < _SPIKE_PROBABILITY
    return fires * rng.uniform(0.5, 1.0, (_BLOCK, n_cells))


def _block_traces(seed: int, n_cells: int, block: int) -> np.ndarray:
    """Calcium traces (block frames, cells), started one block early so that a frame never
    depends on where generation started (the decay left over after 256 frames is ~2e-4)."""
    spikes = np.concatenate(
        [_block_spikes(seed, n_cells, block - 1), _block_spikes(seed, n_cells, block)]
    )
    decay = math.exp(-1.0 / _TAU_FRAMES)
    traces = np.empty_like(spikes)
    level = np.zeros(n_cells)
    for index, fired in enumerate(spikes):
        level = level * decay + fired
        traces[index] = level
    return traces[_BLOCK:]


def _imaging_frame(model: _ImagingModel, seed: int, index: int, trace: np.ndarray) -> np.ndarray:
    drift = 1.0 + 0.04 * math.sin(2 * math.pi * index / model.drift_period + model.drift_phase)
    frame = model.background * np.float32(drift)
    for cell, level in zip(model.cells, trace, strict=True):
        frame[cell.rows, cell.cols] += (
            np.float32(cell.baseline + cell.amplitude * level) * cell.stamp
        )
    pixels = frame.size
    offset = int(np.random.default_rng([seed, _FRAME_STREAM, index]).integers(0, pixels + 1))
    noise = model.noise_bank[offset : offset + pixels].reshape(frame.shape)
    frame += noise * model.noise_scale
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)


def imaging_frames(
    n_frames: int, height: int, width: int, seed: int = 0, n_cells: int = 30, start: int = 0
) -> Iterator[np.ndarray]:
    """Frames start .. start + n_frames - 1 of a one-photon-like movie, as uint8 (height, width).

    Frame i depends only on (seed, height, width, n_cells, i), so any range can be regenerated
    to check decoded pixels. `seed` must be a non-negative integer.
    """
    model = _imaging_model(seed, height, width, n_cells)
    block, traces = -1, np.empty(0)
    for index in range(start, start + n_frames):
        if index // _BLOCK != block:
            block = index // _BLOCK
            traces = _block_traces(seed, n_cells, block)
        yield _imaging_frame(model, seed, index, traces[index % _BLOCK])


@lru_cache(maxsize=8)
def _floor(seed: int, height: int, width: int) -> np.ndarray:
    """A tiled, tinted floor texture (float32 RGB) for behaviour-camera frames."""
    rng = np.random.default_rng([seed, _CAMERA_STREAM])
    tiles = rng.uniform(60, 120, (height // 8 + 1, width // 8 + 1))
    texture = np.kron(tiles, np.ones((8, 8)))[:height, :width]
    texture += rng.normal(0, 8, (height, width))
    tint = np.array([1.0, 0.85, 0.65])
    return (texture[:, :, None] * tint).astype(np.float32)


def camera_frames(
    n_frames: int, height: int, width: int, seed: int = 0, start: int = 0
) -> Iterator[np.ndarray]:
    """Frames start .. start + n_frames - 1 of a bright blob (the animal) moving on a textured
    floor, as uint8 RGB (height, width, 3); deterministic like `imaging_frames`."""
    floor = _floor(seed, height, width)
    y, x = np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32)
    sigma = max(2.0, min(height, width) / 10)
    for index in range(start, start + n_frames):
        cy = height / 2 + 0.35 * height * math.sin(2 * math.pi * index / 170 + seed)
        cx = width / 2 + 0.35 * width * math.sin(2 * math.pi * index / 240)
        blob = np.outer(
            np.exp(-((y - cy) ** 2) / (2 * sigma**2)), np.exp(-((x - cx) ** 2) / (2 * sigma**2))
        )
        frame = floor + (240.0 - floor) * blob[:, :, None].astype(np.float32)
        yield frame.astype(np.uint8)


# ---------------------------------------------------------------- videos


def _check_frame(frame: np.ndarray, shape: tuple[int, ...], number: int) -> np.ndarray:
    if frame.shape != shape or frame.dtype != np.uint8:
        raise ValueError(f"frame {number} is {frame.dtype} {frame.shape}, not uint8 {shape}")
    return np.ascontiguousarray(frame)


def write_video(
    path: Path | str, frames: Iterable[np.ndarray], codec: str, size: tuple[int, int]
) -> int:
    """Encode uint8 frames, (h, w) gray or (h, w, 3) RGB, to an AVI as the DAQ software does.

    `size` is (width, height) as ffmpeg takes it; the AVI fps field is 60 like the DAQ's.
    FFV1 and GREY are lossless for gray frames; MJPG is lossy. Returns the frame count.
    """
    if codec not in _CODECS:
        raise ValueError(f"codec {codec!r} is not one of {sorted(_CODECS)}")
    encoder, gray_out, color_out, options = _CODECS[codec]
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    color = first.ndim == 3
    pix_fmt_out = color_out if color else gray_out
    if pix_fmt_out is None:
        raise ValueError(f"codec {codec} stores gray frames only")
    shape = (size[1], size[0], 3) if color else (size[1], size[0])
    first = _check_frame(first, shape, 0)
    writer = imageio_ffmpeg.write_frames(
        str(path),
        size,
        pix_fmt_in="rgb24" if color else "gray",
        pix_fmt_out=pix_fmt_out,
        fps=_DAQ_FPS,
        quality=None,
        codec=encoder,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=[*options, "-vtag", codec],
    )
    writer.send(None)
    count = 0
    try:
        for frame in itertools.chain([first], iterator):
            writer.send(_check_frame(frame, shape, count))
            count += 1
    finally:
        writer.close()
    return count


# ---------------------------------------------------------------- specs


def _as_gaps(value: Mapping[int, int] | Sequence[int]) -> dict[int, int]:
    """`{index: n}` as given, or a list of indices that each get n = 1."""
    if isinstance(value, Mapping):
        return {int(k): int(v) for k, v in value.items()}
    return {int(index): 1 for index in value}


def _check_device(
    spec: ScopeSpec | CameraSpec, gap_indices: Iterable[int], zero_rows: Iterable[int] = ()
) -> None:
    if spec.n_frames < 1 or spec.frames_per_file < 1:
        raise ValueError(f"{spec.name}: n_frames and frames_per_file must be >= 1")
    if spec.codec not in _CODECS:
        raise ValueError(f"{spec.name}: codec {spec.codec!r} is not one of {sorted(_CODECS)}")
    if spec.roi and (spec.roi["height"], spec.roi["width"]) != (spec.height, spec.width):
        raise ValueError(f"{spec.name}: height/width must equal the ROI size (the saved video)")
    bad = [index for index in gap_indices if not 0 <= index < spec.n_frames - 1]
    if bad:
        raise ValueError(f"{spec.name}: gap after frame(s) {bad} is outside 0..{spec.n_frames - 2}")
    bad = [row for row in zero_rows if not 0 <= row < spec.n_frames]
    if bad:
        raise ValueError(f"{spec.name}: zero quaternion row(s) {bad} are not frames")


@dataclass(frozen=True)
class ScopeSpec:
    """One Miniscope device folder. height/width are the saved video size (= ROI size if set).

    dropped_frames: frame indices after which frames are missing ({index: n_missing}, or a list
    of indices with one missing frame each); they appear only as time gaps (and DAQ numbers).
    """

    name: str = "Miniscope"
    device_type: str = _BNO_TYPE
    n_frames: int = 100
    height: int = 60
    width: int = 80
    codec: str = "FFV1"
    frames_per_file: int = 1000
    frame_rate: str | float = "30FPS"
    gain: str | float = "Low"
    led0: float = 50
    ewl: float = -15
    roi: Roi | None = None
    interval_ms: float = 33.3
    dropped_frames: Mapping[int, int] | Sequence[int] = field(default_factory=dict)
    head_orientation: bool = True
    zero_quaternion_rows: Sequence[int] = ()
    n_cells: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_device(self, self.missing_frames, self.zero_quaternion_rows)

    @property
    def missing_frames(self) -> dict[int, int]:
        return _as_gaps(self.dropped_frames)


@dataclass(frozen=True)
class CameraSpec:
    """One behaviour-camera device folder; `gaps` = {frame index: extra ms after it}."""

    name: str = "BehavCam 2"
    device_type: str = "WebCam"
    n_frames: int = 100
    height: int = 48
    width: int = 64
    codec: str = "MJPG"
    frames_per_file: int = 1000
    roi: Roi | None = None
    interval_ms: float = 33.3
    gaps: Mapping[int, float] = field(default_factory=dict)
    seed: int = 1

    def __post_init__(self) -> None:
        _check_device(self, self.gaps)


@dataclass(frozen=True)
class AcquisitionSpec:
    """One press of Record. `start` is the PC's aware local time; layout "nested" is v1.10+
    (`recordingStartTime`), "flat" v1.0x. notes None -> 0-byte notes.csv (pre-v1.11); a list ->
    v1.11 header plus rows. daq_frame_number adds the v2.0 Miniscope CSV column."""

    start: datetime = DEFAULT_START
    scopes: Sequence[ScopeSpec] = (ScopeSpec(),)
    cameras: Sequence[CameraSpec] = (CameraSpec(),)
    layout: Layout = "nested"
    notes: Sequence[tuple[int, str]] | None = None
    animal: str = "m01"
    researcher: str = ""
    experiment: str = "demo"
    daq_frame_number: bool = False

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None:
            raise ValueError("AcquisitionSpec.start must be timezone-aware (the PC's local time)")
        if self.layout not in ("nested", "flat"):
            raise ValueError(f"layout must be 'nested' or 'flat', not {self.layout!r}")
        devices: list[ScopeSpec | CameraSpec] = [*self.scopes, *self.cameras]
        folders = [device_folder(d.name) for d in devices]
        if len(set(folders)) != len(folders):
            raise ValueError(f"device folder names collide: {folders}")


# ---------------------------------------------------------------- truth


@dataclass(frozen=True)
class DeviceTruth:
    """What was written for one device, to compare a conversion against."""

    name: str
    folder: Path
    spec: ScopeSpec | CameraSpec
    timestamps_ms: np.ndarray  # int64, one per saved frame, relative to the acquisition start
    buffer_index: np.ndarray
    daq_frame_numbers: np.ndarray | None
    quaternions: np.ndarray | None  # (n, 4) w, x, y, z exactly as printed; zeros = no sample
    videos: tuple[Path, ...]

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Saved frames start .. stop - 1 as they were encoded (MJPG decodes only close to them)."""
        spec = self.spec
        count = (spec.n_frames if stop is None else stop) - start
        if isinstance(spec, ScopeSpec):
            return imaging_frames(count, spec.height, spec.width, spec.seed, spec.n_cells, start)
        return camera_frames(count, spec.height, spec.width, spec.seed, start)


@dataclass(frozen=True)
class AcquisitionTruth:
    """One written acquisition; `devices` is keyed by device folder name (spaces -> `_`)."""

    folder: Path
    spec: AcquisitionSpec
    start: datetime  # truncated to ms, as stored
    msec_since_epoch: int
    devices: dict[str, DeviceTruth]


# ---------------------------------------------------------------- writers


def device_folder(name: str) -> str:
    """The DAQ names a device folder after the device with spaces replaced by `_`."""
    return name.replace(" ", "_")


def _qt_json(value: dict[str, Any]) -> str:
    """JSON as QJsonDocument::Indented writes it: sorted keys, 4 spaces, `[\\n    ]` if empty."""
    text = json.dumps(value, indent=4, sort_keys=True, ensure_ascii=False)
    text = re.sub(
        r"^( *)(.*)(\[\]|\{\})(,?)$",
        lambda m: f"{m[1]}{m[2]}{m[3][0]}\n{m[1]}{m[3][1]}{m[4]}",
        text,
        flags=re.MULTILINE,
    )
    return text + "\n"


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def _frame_times(
    n: int, interval_ms: float, gaps_ms: Mapping[int, float], rng: np.random.Generator
) -> np.ndarray:
    """Integer ms since Record; the first frame was already buffered, so only it is negative
    (real files: -6 to -34 ms, then a regular interval)."""
    steps = np.clip(rng.normal(interval_ms, 0.03 * interval_ms, n - 1), 0.3 * interval_ms, None)
    first = -rng.uniform(5, min(30.0, 0.9 * interval_ms))
    for index, gap in gaps_ms.items():
        steps[index] += gap
    return np.round(first + np.concatenate([[0.0], np.cumsum(steps)])).astype(np.int64)


def _buffer_index(n: int, drops: Iterable[int], rng: np.random.Generator) -> np.ndarray:
    """Ring-buffer backlog: mostly 0, a rising backlog just before frames are lost."""
    backlog = np.where(rng.random(n) < 0.03, rng.integers(1, 3, n), 0)
    for index in drops:
        low = max(0, index - 4)
        backlog[low : index + 1] = np.arange(index + 1 - low) * 3 + 2
    return backlog


def _quaternions(
    n: int, zero_rows: Iterable[int], rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """A slowly turning head as BNO055 int16/16384 values, printed like QTextStream (6 digits)."""
    start = rng.normal(0, 1, 4)
    start[0] = abs(start[0]) + 1.0  # keep qw > 0 like real BNO output
    walk = rng.normal(0, 0.002, (n, 4)).cumsum(axis=0) + start
    quaternions = walk / np.linalg.norm(walk, axis=1, keepdims=True)
    quaternions = np.round(quaternions * 16384) / 16384 + 0.0  # + 0.0 turns -0.0 into 0
    quaternions[list(zero_rows)] = 0.0
    texts = [",".join(f"{value:g}" for value in row) for row in quaternions]
    return texts, np.array([[float(v) for v in text.split(",")] for text in texts])


def _write_videos(
    folder: Path, frames: Iterator[np.ndarray], spec: ScopeSpec | CameraSpec
) -> tuple[Path, ...]:
    """`0.avi, 1.avi, ...` with `frames_per_file` frames each, as the DAQ splits them."""
    paths = []
    for number, first in enumerate(range(0, spec.n_frames, spec.frames_per_file)):
        path = folder / f"{number}.avi"
        count = min(spec.frames_per_file, spec.n_frames - first)
        write_video(path, itertools.islice(frames, count), spec.codec, (spec.width, spec.height))
        paths.append(path)
    return tuple(paths)


def _device_metadata(spec: ScopeSpec | CameraSpec, device_id: int, base: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "compression": spec.codec,
        "deviceDirectory": f"{base}/{device_folder(spec.name)}",
        "deviceID": device_id,
        "deviceName": spec.name,
        "deviceType": spec.device_type,
        "framesPerFile": spec.frames_per_file,
    }
    if spec.roi:
        meta["ROI"] = {key: spec.roi[key] for key in ("height", "leftEdge", "topEdge", "width")}
    if isinstance(spec, ScopeSpec):
        meta.update(ewl=spec.ewl, frameRate=spec.frame_rate, gain=spec.gain, led0=spec.led0)
    return meta


def _timestamps_csv(times: np.ndarray, backlog: np.ndarray, daq: np.ndarray | None) -> str:
    if daq is None:
        rows = [f"{i},{t},{b}" for i, (t, b) in enumerate(zip(times, backlog, strict=True))]
        return "\n".join([_TIMESTAMP_HEADER, *rows, ""])
    rows = [f"{i},{t},{b},{d}" for i, (t, b, d) in enumerate(zip(times, backlog, daq, strict=True))]
    return "\n".join([_TIMESTAMP_HEADER + ",DAQ Frame Number", *rows, ""])


def _write_scope(
    folder: Path, spec: ScopeSpec, device_id: int, base: str, daq_column: bool
) -> DeviceTruth:
    rng = np.random.default_rng([spec.seed, _MODEL_STREAM, 1])
    missing = spec.missing_frames
    times = _frame_times(
        spec.n_frames, spec.interval_ms, {i: n * spec.interval_ms for i, n in missing.items()}, rng
    )
    backlog = _buffer_index(spec.n_frames, missing, rng)
    daq = None
    if daq_column:
        lost = np.zeros(spec.n_frames, dtype=np.int64)
        for index, n in missing.items():
            lost[index + 1 :] += n
        daq = int(rng.integers(100, 5000)) + np.arange(spec.n_frames) + lost
    _write_text(folder / "timeStamps.csv", _timestamps_csv(times, backlog, daq))
    quaternions = None
    if spec.head_orientation and spec.device_type == _BNO_TYPE:
        texts, quaternions = _quaternions(spec.n_frames, spec.zero_quaternion_rows, rng)
        rows = [f"{t},{q}" for t, q in zip(times, texts, strict=True)]
        _write_text(
            folder / "headOrientation.csv", "\n".join(["Time Stamp (ms),qw,qx,qy,qz", *rows, ""])
        )
    _write_text(folder / "metaData.json", _qt_json(_device_metadata(spec, device_id, base)))
    frames = imaging_frames(spec.n_frames, spec.height, spec.width, spec.seed, spec.n_cells)
    videos = _write_videos(folder, frames, spec)
    return DeviceTruth(spec.name, folder, spec, times, backlog, daq, quaternions, videos)


def _write_camera(folder: Path, spec: CameraSpec, device_id: int, base: str) -> DeviceTruth:
    rng = np.random.default_rng([spec.seed, _CAMERA_STREAM, 1])
    times = _frame_times(spec.n_frames, spec.interval_ms, spec.gaps, rng)
    backlog = _buffer_index(spec.n_frames, spec.gaps, rng)
    _write_text(folder / "timeStamps.csv", _timestamps_csv(times, backlog, None))
    _write_text(folder / "metaData.json", _qt_json(_device_metadata(spec, device_id, base)))
    videos = _write_videos(
        folder, camera_frames(spec.n_frames, spec.height, spec.width, spec.seed), spec
    )
    return DeviceTruth(spec.name, folder, spec, times, backlog, None, None, videos)


def _session_metadata(
    spec: AcquisitionSpec, start: datetime, epoch_ms: int, base: str
) -> dict[str, Any]:
    """v1.10+ lists devices sorted (config objects are keyed by name); v1.0x in config order."""
    scopes, cameras = [s.name for s in spec.scopes], [c.name for c in spec.cameras]
    if spec.layout == "nested":
        scopes, cameras = sorted(scopes), sorted(cameras)
    meta: dict[str, Any] = {
        "animalName": spec.animal,
        "baseDirectory": base,
        "cameras": cameras,
        "experimentName": spec.experiment,
        "miniscopes": scopes,
        "researcherName": spec.researcher,
    }
    fields = {
        "year": start.year,
        "month": start.month,
        "day": start.day,
        "hour": start.hour,
        "minute": start.minute,
        "second": start.second,
        "msec": start.microsecond // 1000,
        "msecSinceEpoch": epoch_ms,
    }
    if spec.layout == "nested":
        meta["recordingStartTime"] = fields
    else:
        meta.update(fields)
    return meta


def _notes_csv(notes: Sequence[tuple[int, str]] | None) -> str:
    if notes is None:
        return ""
    return "".join(["Time Stamp (ms), Note\n", *(f"{t},{text}\n" for t, text in notes)])


def write_acquisition(folder: Path | str, spec: AcquisitionSpec) -> AcquisitionTruth:
    """Write one acquisition folder as the DAQ-QT software lays it out (format notes 2-9)."""
    folder = Path(folder)
    start = spec.start.replace(microsecond=spec.start.microsecond // 1000 * 1000)
    epoch_ms = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    who = spec.researcher or "Miniscope"
    base = (
        f"C:/Users/{who}/Documents/data/{spec.experiment}/{spec.animal}/{start:%Y_%m_%d/%H_%M_%S}"
    )
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    _write_text(folder / "metaData.json", _qt_json(_session_metadata(spec, start, epoch_ms, base)))
    _write_text(folder / "notes.csv", _notes_csv(spec.notes))
    devices: dict[str, DeviceTruth] = {}
    specs: list[ScopeSpec | CameraSpec] = [*spec.scopes, *spec.cameras]
    for device_id, device in enumerate(specs):
        device_dir = folder / device_folder(device.name)
        device_dir.mkdir(exist_ok=True)
        if isinstance(device, ScopeSpec):
            truth = _write_scope(device_dir, device, device_id, base, spec.daq_frame_number)
        else:
            truth = _write_camera(device_dir, device, device_id, base)
        devices[device_dir.name] = truth
    return AcquisitionTruth(folder, spec, start, epoch_ms, devices)


def write_session(
    root: Path | str,
    n_acquisitions: int = 3,
    scope: ScopeSpec | None = None,
    cameras: Sequence[CameraSpec] | None = None,
    gap_s: float = 180.0,
    first_start: datetime = DEFAULT_START,
    notes: Sequence[tuple[int, str]] | None = None,
) -> list[AcquisitionTruth]:
    """The NeuroConv "Tye lab" layout `root/<HH_MM_SS>/{metaData.json, Miniscope/, BehavCam_2/}`:
    acquisition k starts k * gap_s after the first and uses seeds spec.seed + k."""
    scope = ScopeSpec() if scope is None else scope
    cameras = [CameraSpec()] if cameras is None else list(cameras)
    specs = [
        AcquisitionSpec(
            start=first_start + timedelta(seconds=k * gap_s),
            scopes=[replace(scope, seed=scope.seed + k)],
            cameras=[replace(camera, seed=camera.seed + k) for camera in cameras],
            notes=notes,
        )
        for k in range(n_acquisitions)
    ]
    folders = [Path(root) / f"{spec.start:%H_%M_%S}" for spec in specs]
    if len(set(folders)) != len(folders):
        raise ValueError(f"gap_s={gap_s} puts two acquisitions in the same HH_MM_SS folder")
    return [write_acquisition(folder, spec) for folder, spec in zip(folders, specs, strict=True)]


def write_demo_session(root: Path | str) -> Path:
    """A small realistic session in `root/demo_session` (2 acquisitions, 3 videos each, dropped
    frames, head orientation starting with zeros, v1.11 notes); returns that folder."""
    session = Path(root) / "demo_session"
    scope = ScopeSpec(
        n_frames=300,
        height=200,
        width=200,
        frames_per_file=100,
        dropped_frames={57: 1, 211: 2},
        zero_quaternion_rows=[0, 1, 2],
        seed=7,
    )
    camera = CameraSpec(n_frames=300, height=120, width=160, frames_per_file=100, gaps={150: 400.0})
    notes = [(1500, "baseline start"), (6000, "Miniscope,led0,55")]
    write_session(
        session, n_acquisitions=2, scope=scope, cameras=[camera], gap_s=120.0, notes=notes
    )
    return session
