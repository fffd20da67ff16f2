"""The statistics of each imaging series, gathered from its frames as they are decoded.

Decoded straight into the file, a series' frames pass through one `SeriesStats`; decoded into
chunk files (the staged path), each video's statistics are stored in its chunk file and the
series' are put together from them as the chunks are copied, so a reused chunk file needs no
decoding for them either. Gray frames only: scopes (embedded camera frames are colour).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py

from ..encode.chunks import Observer
from ..nwb.base import Fill
from ..quality.stats import FrameSummary, SeriesStats, placed, read_summary, write_summary

QC_GROUP = "qc"  # the chunk file's group of its video's statistics
VIDEO_SAMPLE_FRAMES, VIDEO_SAMPLE_BYTES = 40, 4 * 1024**2  # per video; thinned per series


def _series(part: Fill) -> str:
    return part.dataset_path.split("/")[1]


def _gray(part: Fill) -> bool:
    return len(part.video.frame_shape) == 2


class FrameQuality:
    """Per image series of one file being written: its statistics, decoded or copied."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # off (no QC report asked for): no statistics are gathered
        self.totals: dict[str, int] = {}
        self.decoded: dict[str, SeriesStats] = {}
        self.copied: dict[str, list[tuple[int, int, FrameSummary]]] = {}

    def plan(self, fills: list[Fill]) -> None:
        """The series' frame counts, from the layout, before any frame is filled in."""
        self.totals = {}
        for part in filter(_gray, fills):
            self.totals[_series(part)] = self.totals.get(_series(part), 0) + part.n_frames
        self.decoded, self.copied = {}, {}

    def observer(self, part: Fill) -> Observer | None:
        """What sees the frames of `part` as they are decoded into the file."""
        if not self.enabled or not _gray(part):
            return None
        name = _series(part)
        stats = self.decoded.setdefault(name, SeriesStats(self.totals[name]))
        return stats.observer

    def copied_from(self, part: Fill, chunk_file: Path) -> None:
        """`part`'s statistics from the chunk file its frames are copied from."""
        if not self.enabled or not _gray(part):
            return
        with h5py.File(chunk_file, "r") as h5:
            if QC_GROUP in h5:
                summary = read_summary(h5[QC_GROUP])
                self.copied.setdefault(_series(part), []).append(
                    (part.offset, part.n_frames, summary)
                )

    def summaries(self) -> dict[str, FrameSummary]:
        """Each series' statistics (a series no frame of which was seen has none)."""
        found = {name: stats.summary() for name, stats in self.decoded.items()}
        found |= {name: placed(parts, self.totals[name]) for name, parts in self.copied.items()}
        return {name: summary for name, summary in found.items() if summary is not None}


def video_stats(n_frames: int) -> SeriesStats:
    """A video's own statistics, for its chunk file (a small sample budget: see `placed`)."""
    return SeriesStats(n_frames, VIDEO_SAMPLE_FRAMES, VIDEO_SAMPLE_BYTES)


def store(stats: SeriesStats) -> Callable[[h5py.File], None]:
    """What `encode_video` calls to keep the video's statistics in its chunk file."""

    def extra(h5: h5py.File) -> None:
        summary = stats.summary()
        if summary is not None:
            write_summary(h5.create_group(QC_GROUP), summary)

    return extra


def has_frame_stats(chunk_file: Path) -> bool:
    try:
        with h5py.File(chunk_file, "r") as h5:
            return QC_GROUP in h5
    except OSError:
        return False
