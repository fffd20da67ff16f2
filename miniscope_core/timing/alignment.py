"""Pair decoded video frames with timeStamps.csv rows, file by file.

The DAQ starts a new video every `framesPerFile` saved frames, so video `k.avi` holds rows
`k * framesPerFile ...`. Matching per file (not by a global count) keeps every later frame on
its own timestamp when one file in the middle is short, unfinished or empty.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FrameCountMismatch, MiniscopeFormatError


@dataclass(frozen=True)
class Segment:
    """The first `n_frames` frames of video number `video` go with rows `first_row...`."""

    video: int
    n_frames: int
    first_row: int


def _report(message: str, path: Path, strict: bool, kept: str = "") -> None:
    """A mismatch: an error with strict (nothing is kept then), else a warning saying what is."""
    if strict:
        raise MiniscopeFormatError(path, message)
    warnings.warn(f"{path}: {message}{kept}", FrameCountMismatch, stacklevel=3)


def align_frames(
    videos: tuple[Path, ...],
    frame_counts: list[int],
    first_rows: list[int],
    capacities: list[int | None],
    n_rows: int,
    timestamps_path: Path,
    strict: bool = False,
    missing: tuple[str, ...] = (),
) -> list[Segment]:
    """One segment per video: the frames that have both a decoded image and a timestamp.

    `capacities[k]` is how many rows file k can hold (None: all rows after `first_rows[k]`);
    `missing` names the video files the layout expects but the folder lacks.
    Mismatches keep the shorter side and warn naming the file and both counts (error if strict).
    """
    segments = []
    assigned = 0
    for number, (video, decoded, first_row, capacity) in enumerate(
        zip(videos, frame_counts, first_rows, capacities, strict=True)
    ):
        end = n_rows if capacity is None else min(first_row + capacity, n_rows)
        expected = max(0, end - first_row)
        assigned += expected
        if decoded != expected:
            _report(
                f"{decoded} decodable frames but {timestamps_path.name} lists {expected} for "
                "this file",
                video,
                strict,
                f"; keeping {min(decoded, expected)}",
            )
        segments.append(Segment(number, min(decoded, expected), first_row))
    if assigned < n_rows:
        files = f" ({', '.join(missing)} missing)" if missing else ""
        _report(
            f"{n_rows - assigned} of {n_rows} rows belong to no video file{files}",
            timestamps_path,
            strict,
            "; they are skipped",
        )
    return segments


@dataclass(frozen=True)
class FileLayout:
    """Where each `k.avi` starts among the timestamp rows, and the files the layout lacks."""

    first_rows: list[int]
    capacities: list[int | None]
    missing: tuple[str, ...] = ()


def daq_layout(
    indices: tuple[int, ...],
    frame_counts: list[int],
    frames_per_file: int | None,
    n_rows: int,
    settings_path: Path,
) -> FileLayout:
    """The DAQ starts a file every framesPerFile saved frames: `k.avi` holds rows from
    `k * framesPerFile`.

    The videos' own counts decide when framesPerFile is missing or unusable (None), or when
    they contradict it (a file holds more frames than it says, or every file but the last holds
    the same other count and all of them add up to the rows): that is said, naming the file.
    """
    counts = [count for _, count in sorted(zip(indices, frame_counts, strict=True))]
    told = max(counts[:-1]) if len(counts) > 1 and max(counts[:-1]) > 0 else None
    per_file = frames_per_file
    if per_file is None:
        per_file = told
        if told is not None:
            _say_layout(settings_path, f"framesPerFile is missing or not a count of frames; "
                        f"the videos hold {told} frames per file, which is used")  # fmt: skip
    elif told is not None and told != per_file and _videos_contradict(counts, per_file, n_rows):
        _say_layout(settings_path, f"framesPerFile {per_file} contradicts the videos, which "
                    f"hold {told} frames per file; their count is used")  # fmt: skip
        per_file = told
    if per_file is None:
        return _unknown_layout(indices, settings_path)
    needed = -(-n_rows // per_file)
    missing = tuple(f"{k}.avi" for k in range(max(needed, max(indices, default=-1) + 1))
                    if k not in indices)  # fmt: skip
    return FileLayout([k * per_file for k in indices], [per_file] * len(indices), missing)


def _videos_contradict(counts: list[int], per_file: int, n_rows: int) -> bool:
    over = any(count > per_file for count in counts)
    even = len(set(counts[:-1])) == 1 and sum(counts) == n_rows
    return over or even


def _unknown_layout(indices: tuple[int, ...], settings_path: Path) -> FileLayout:
    """A single video and no usable framesPerFile: it holds the rows from the first, unless its
    number says files before it are missing, whose rows cannot then be told."""
    if indices and indices[0] != 0:
        raise MiniscopeFormatError(
            settings_path,
            f"framesPerFile is missing or not a count of frames, and the only video is "
            f"{indices[0]}.avi, so which timestamp rows are its frames cannot be told",
        )
    return FileLayout([0] * len(indices), [None] * len(indices))


def _say_layout(settings_path: Path, message: str) -> None:
    warnings.warn(f"{settings_path}: {message}", FrameCountMismatch, stacklevel=3)


def sequential_layout(frame_counts: list[int]) -> tuple[list[int], list[int | None]]:
    """First rows and capacities of files that simply follow each other (explicit file lists)."""
    firsts = [0, *np.cumsum(frame_counts)[:-1].tolist()] if frame_counts else []
    capacities: list[int | None] = [*frame_counts[:-1], None] if frame_counts else []
    return [int(row) for row in firsts], capacities


def selected_rows(segments: list[Segment]) -> np.ndarray:
    """Row indices of every kept frame, in order."""
    if not segments:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(
        [np.arange(s.first_row, s.first_row + s.n_frames, dtype=np.int64) for s in segments]
    )
