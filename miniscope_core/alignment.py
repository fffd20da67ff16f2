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

from .errors import FrameCountMismatch, MiniscopeFormatError


@dataclass(frozen=True)
class Segment:
    """The first `n_frames` frames of video number `video` go with rows `first_row...`."""

    video: int
    n_frames: int
    first_row: int


def _report(message: str, path: Path, strict: bool) -> None:
    if strict:
        raise MiniscopeFormatError(path, message)
    warnings.warn(f"{path}: {message}", FrameCountMismatch, stacklevel=3)


def align_frames(
    videos: tuple[Path, ...],
    frame_counts: list[int],
    first_rows: list[int],
    capacities: list[int | None],
    n_rows: int,
    timestamps_path: Path,
    strict: bool = False,
) -> list[Segment]:
    """One segment per video: the frames that have both a decoded image and a timestamp.

    `capacities[k]` is how many rows file k can hold (None: all rows after `first_rows[k]`).
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
                f"this file; keeping {min(decoded, expected)}",
                video,
                strict,
            )
        segments.append(Segment(number, min(decoded, expected), first_row))
    if assigned < n_rows:
        _report(
            f"{n_rows - assigned} of {n_rows} rows belong to no video file (missing .avi); "
            "they are skipped",
            timestamps_path,
            strict,
        )
    return segments


def daq_layout(
    indices: tuple[int, ...], frames_per_file: int
) -> tuple[list[int], list[int | None]]:
    """First rows and capacities of `k.avi` files: the DAQ starts a file every framesPerFile."""
    return [index * frames_per_file for index in indices], [frames_per_file] * len(indices)


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
