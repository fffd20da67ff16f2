"""Synthetic recordings of the legacy Miniscope DAQ software (V3 era), for tests and the demo.

The layout and files follow the software's source (see `legacy`): `M_D_YYYY/H<h>_M<m>_S<s>/`
with `msCam<k>.avi`, `behavCam<k>.avi` of 1000 frames each, both cameras interleaved in
`timestamp.dat`, and `settings_and_notes.dat`. The videos are what OpenCV's Video for Windows
writer makes of `CV_FOURCC('D','I','B',' ')`: uncompressed bottom-up bitmaps, the scope's 8-bit
gray as palette indices with a gray palette (`isColor=false`), the camera's 24-bit BGR.
Frames come from `synthetic`'s generators, so decoded pixels can be checked exactly.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..daq.legacy import CAMERA_PREFIX, FRAMES_PER_FILE, SCOPE_PREFIX, SETTINGS_FILE, TIMESTAMP_FILE
from .synthetic import camera_frames, imaging_frames

_FPS = 20  # the software writes 20 into every AVI header, whatever the real rate
_AVIF_HASINDEX = 0x10
_AVIIF_KEYFRAME = 0x10
_GRAY_PALETTE = b"".join(bytes((level, level, level, 0)) for level in range(256))
_STALE_START_MS = 183_000  # a previous Record this long before: the first rows' stale clock


@dataclass(frozen=True)
class LegacySpec:
    """One V3 recording; sizes are (width, height), the V3 sensor's 752x480 shrunk for tests."""

    start: datetime = datetime(2019, 6, 11, 9, 5, 3)  # local wall clock, as the folder names
    scope_frames: int = 12
    camera_frames: int = 9  # 0: no behaviour camera
    scope_cam: int = 0  # camNum of the Miniscope in timestamp.dat
    camera_cam: int = 1
    scope_size: tuple[int, int] = (20, 12)
    camera_size: tuple[int, int] = (14, 10)
    scope_interval_ms: float = 50.0  # 20 FPS
    camera_interval_ms: float = 33.4
    stale_first_rows: bool = False  # both cameras' first sysClock from a stale start
    animal: str = "v3mouse"
    excitation: int = 37
    exposure: int = 255
    record_length: int = 0
    notes: tuple[tuple[int, str], ...] = (
        (1, "tail pinch"),
        (2, "LED excitation intensity set to 40"),
    )
    seed: int = 0


@dataclass(frozen=True)
class LegacyTruth:
    """What was written: the folder, the frames and each camera's true sysClock (ms)."""

    folder: Path
    spec: LegacySpec
    scope: np.ndarray  # (frames, height, width) uint8
    camera: np.ndarray  # (frames, height, width, 3) uint8 RGB
    scope_ms: np.ndarray
    camera_ms: np.ndarray


def recording_folder(root: Path, start: datetime) -> Path:
    """`root/M_D_YYYY/H<h>_M<m>_S<s>`, without zero padding, as the software names it."""
    day = f"{start.month}_{start.day}_{start.year}"
    return root / day / f"H{start.hour}_M{start.minute}_S{start.second}"


def write_legacy_recording(root: Path | str, spec: LegacySpec = LegacySpec()) -> LegacyTruth:
    """A V3 recording folder under `root` (created), named after `spec.start`."""
    folder = recording_folder(Path(root), spec.start)
    folder.mkdir(parents=True)
    width, height = spec.scope_size
    scope = np.stack(list(imaging_frames(spec.scope_frames, height, width, spec.seed, 5)))
    cam_width, cam_height = spec.camera_size
    camera = np.zeros((0, cam_height, cam_width, 3), np.uint8)
    if spec.camera_frames:
        frames = camera_frames(spec.camera_frames, cam_height, cam_width, spec.seed)
        camera = np.stack(list(frames))
    write_numbered(folder, SCOPE_PREFIX, scope)
    if spec.camera_frames:
        write_numbered(folder, CAMERA_PREFIX, camera[..., ::-1])  # stored as BGR
    rng = np.random.default_rng(spec.seed)
    scope_ms = _clock(spec.scope_frames, spec.scope_interval_ms, 3.0, rng)
    camera_ms = _clock(spec.camera_frames, spec.camera_interval_ms, 16.0, rng)
    _write_timestamps(folder / TIMESTAMP_FILE, spec, scope_ms, camera_ms)
    (folder / SETTINGS_FILE).write_text(_settings_text(spec), encoding="utf-8", newline="\r\n")
    return LegacyTruth(folder, spec, scope, camera, scope_ms, camera_ms)


def _clock(n: int, interval_ms: float, after_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Grab times in whole ms since Record: the first within 12 ms from `after_ms`, then about
    `interval_ms` apart."""
    steps = rng.normal(interval_ms, 0.05 * interval_ms, max(n - 1, 0)).clip(0.5 * interval_ms)
    first = rng.uniform(after_ms, after_ms + 12)
    return np.round(first + np.concatenate([[0.0], np.cumsum(steps)]))[:n].astype(np.int64)


def _write_timestamps(
    path: Path, spec: LegacySpec, scope_ms: np.ndarray, camera_ms: np.ndarray
) -> None:
    """Rows of both cameras in write order (by grab time, the scope first on a tie)."""
    rows = [(t, 0, spec.scope_cam, n + 1) for n, t in enumerate(scope_ms)]
    rows += [(t, 1, spec.camera_cam, n + 1) for n, t in enumerate(camera_ms)]
    lines = ["camNum\tframeNum\tsysClock\tbuffer"]
    for time_ms, _, cam, frame in sorted(rows):
        clock = time_ms + _STALE_START_MS if spec.stale_first_rows and frame == 1 else time_ms
        lines.append(f"{cam}\t{frame}\t{clock}\t{frame % 3}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\r\n")


def _settings_text(spec: LegacySpec) -> str:
    lines = [
        "animal\texcitation\tmsCamExposure\trecordLength",
        f"{spec.animal}\t{spec.excitation}\t{spec.exposure}\t{spec.record_length}",
        "",
        "elapsedTime\tNote",
    ]
    lines += [f"{seconds}\t{text}" for seconds, text in spec.notes]
    return "\n".join(lines) + "\n"


def write_numbered(folder: Path, prefix: str, frames: np.ndarray) -> list[Path]:
    """`<prefix>1.avi, <prefix>2.avi, ...` with 1000 frames each, as the software splits them."""
    paths = []
    for number, first in enumerate(range(0, len(frames), FRAMES_PER_FILE), start=1):
        path = folder / f"{prefix}{number}.avi"
        write_dib_avi(path, frames[first : first + FRAMES_PER_FILE])
        paths.append(path)
    return paths


def write_dib_avi(path: Path, frames: Sequence[np.ndarray] | np.ndarray) -> None:
    """An AVI of uncompressed DIB frames: (h, w) uint8 as gray-palette indices, (h, w, 3) as
    BGR, rows bottom-up and padded to 4 bytes, with an idx1 index."""
    frames = np.asarray(frames, dtype=np.uint8)
    n, height, width = frames.shape[:3]
    color = frames.ndim == 4
    bits = 24 if color else 8
    stride = (width * bits // 8 + 3) // 4 * 4
    size = stride * height
    bitmap = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, size, 0, 0, 0, 0)
    bitmap += b"" if color else _GRAY_PALETTE
    avih = struct.pack(
        "<10I16x", 1_000_000 // _FPS, size * _FPS, 0, _AVIF_HASINDEX, n, 0, 1, size, width, height
    )
    strh = struct.pack(
        "<4s4sIHHIIIIIIII4h",
        b"vids", b"DIB ", 0, 0, 0, 0, 1, _FPS, 0, n, size, 0xFFFFFFFF, 0, 0, 0, width, height,
    )  # fmt: skip
    stream = _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", bitmap))
    header = _list(b"hdrl", _chunk(b"avih", avih) + stream)
    packets = [_chunk(b"00db", _bitmap_rows(frame, stride)) for frame in frames]
    offsets = itertools.accumulate((len(p) for p in packets), initial=4)
    index = b"".join(
        struct.pack("<4sIII", b"00db", _AVIIF_KEYFRAME, offset, size)
        for offset, _ in zip(offsets, packets, strict=False)
    )
    body = b"AVI " + header + _list(b"movi", b"".join(packets)) + _chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _bitmap_rows(frame: np.ndarray, stride: int) -> bytes:
    rows = frame[::-1].reshape(frame.shape[0], -1)
    padded = np.zeros((rows.shape[0], stride), np.uint8)
    padded[:, : rows.shape[1]] = rows
    return padded.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _list(kind: bytes, body: bytes) -> bytes:
    return _chunk(b"LIST", kind + body)


def write_legacy_session(
    root: Path | str, specs: Iterable[LegacySpec] = (LegacySpec(),)
) -> list[LegacyTruth]:
    """Several V3 recordings under `root` (one per spec, each in its own date/time folder)."""
    return [write_legacy_recording(root, spec) for spec in specs]
