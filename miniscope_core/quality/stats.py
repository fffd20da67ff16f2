"""Statistics of one imaging series, gathered from its frames as the conversion decodes them.

The conversion decodes each video once, frame by frame, in threads; one `FrameStats` per
series sees every frame (`add`, in any order, from any thread, under the series' lock in
`SeriesStats`), so nothing is decoded twice and the statistics take one set of full-size
arrays, not one per thread.

The cost of `add` is bounded so that the conversion slows by well under its 5 % budget
(about 0.2 ms of the ~4 ms a 600x600 frame takes to decode and deflate on one core); measured
about 0.05 ms per 600x600 uint8 frame on one core:

- the max projection (`np.maximum` in place) and the sum for the mean projection are kept at
  full resolution; the sum goes into a uint16 (uint32 for uint16 frames) partial sum, which
  cannot overflow before `_FOLD` frames and is then folded into the total: adding a uint8
  frame to a wider array directly costs ~4x more. The total is uint32 (half a uint64's memory)
  until the frames it sums could overflow it (16 million uint8
  frames), then uint64;
- the brightness of a frame is the mean of every `BRIGHTNESS_ROW_STRIDE`-th row (all of its
  columns): contiguous memory, a quarter of the pixels, and a mean that follows an LED, focus or
  bleaching as well as the full frame's does;
- a bounded subsample of frames (for the motion estimate) is copied: at most `max_frames`
  and `max_bytes` in all, at frame indices evenly spaced over the series' known frame count,
  so a copy is made once every ~n/200 frames, into one array made with the accumulator
  (`SampledFrames`): a decoding thread allocates nothing that outlives its frame.

numpy releases the GIL in all of these; the lock is held for them alone (~0.05 ms a frame).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np
import numpy.typing as npt

from .motion import MAX_SIDE

BRIGHTNESS_ROW_STRIDE = 4
MAX_SAMPLE_FRAMES = 100  # the motion estimate's cost: ~0.6 s and ~16 MB for V4 frames
MAX_SAMPLE_BYTES = 8 * 1024**2  # of block-averaged samples: 200 V4 frames take 8 MB
_PARTIAL: dict[np.dtype, np.dtype] = {
    np.dtype(np.uint8): np.dtype(np.uint16),
    np.dtype(np.uint16): np.dtype(np.uint32),
}


def sample_indices(
    n_frames: int,
    frame_bytes: int,
    max_frames: int = MAX_SAMPLE_FRAMES,
    max_bytes: int = MAX_SAMPLE_BYTES,
) -> np.ndarray:
    """Frame indices evenly spaced over `n_frames` (first and last included), as many as both
    budgets allow: the frames the motion estimate will see."""
    count = min(n_frames, max_frames, max_bytes // max(frame_bytes, 1))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n_frames - 1, count).round().astype(np.int64))


@dataclass(frozen=True, eq=False)  # arrays: compare fields, not objects
class FrameSummary:
    """What the accumulators of one series found, with images in display order (row = y)."""

    n_frames: int  # the series' frame count, as announced
    frames_seen: int  # frames added (fewer when a decoder failed part-way)
    brightness: np.ndarray  # float64 (n_frames,): mean pixel value per frame, NaN: not seen
    mean_projection: np.ndarray  # float32 (height, width)
    max_projection: np.ndarray  # the frames' dtype, (height, width)
    sample_indices: np.ndarray  # int64 (k,), ascending: frames kept for the motion estimate
    samples: np.ndarray  # the frames' dtype, (k, height / block, width / block): block means
    sample_block: int = 1  # the samples' pixels are the means of block x block frame pixels


class SampledFrames:
    """The frames kept for the motion estimate (block means, display order), in one array made
    with the accumulators, before decoding: decoder threads write into their rows and allocate
    nothing that outlives a frame, so no kept array pins a thread's malloc heap (glibc cannot
    give a heap back below its highest block in use: that kept ~40 MB after decoding)."""

    def __init__(
        self, indices: np.ndarray, shape: tuple[int, int], dtype: np.dtype, block: int
    ) -> None:
        self.indices = indices
        self.block = block
        self._rows = {index: row for row, index in enumerate(indices.tolist())}
        sides = [side // block for side in shape]  # the frames' shape as shown
        self._frames = np.empty((len(indices), *sides), dtype)
        self._filled = np.zeros(len(indices), bool)

    def put(self, index: int, frame: np.ndarray) -> None:
        """Keep `frame` (as shown) if `index` is sampled; whatever is kept is copied."""
        row = self._rows.get(index)
        if row is None:
            return
        height, width = (side // self.block * self.block for side in frame.shape)
        if self.block == 1:
            self._frames[row] = frame
        else:  # the mean of each block (edges that do not fill one dropped), rounded
            blocks = frame[:height, :width].reshape(
                height // self.block, self.block, width // self.block, self.block
            )
            means = blocks.mean(axis=(1, 3), dtype=np.float32)
            self._frames[row] = np.rint(means, out=means)
        self._filled[row] = True

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The indices and frames kept, handed over (the store is left empty): held once."""
        if self._filled.all():
            taken = self.indices, self._frames
        else:
            taken = self.indices[self._filled], self._frames[self._filled]
        self._frames = np.empty((0, *self._frames.shape[1:]), self._frames.dtype)  # no view
        self.indices, self._filled, self._rows = np.zeros(0, np.int64), np.zeros(0, bool), {}
        return taken


class FrameStats:
    """Accumulates one series' statistics from decoded frames (one thread at a time).

    `n_frames` is the series' whole frame count and `index` in `add` is the frame's row in the
    series (the dataset row the decoder gives it), whichever thread decodes it. With
    `nwb_order=True` frames are in NWB's (width, height) order, as the conversion decodes them;
    `summary()` then gives images in display order (height, width).
    """

    def __init__(
        self,
        n_frames: int,
        frame_shape: tuple[int, ...],
        dtype: npt.DTypeLike = np.uint8,
        *,
        nwb_order: bool = False,
        max_sample_frames: int = MAX_SAMPLE_FRAMES,
        max_sample_bytes: int = MAX_SAMPLE_BYTES,
    ) -> None:
        self.dtype: np.dtype = np.dtype(dtype)
        if self.dtype not in _PARTIAL:
            raise ValueError(f"frames of {self.dtype} are not supported (uint8 or uint16)")
        if len(frame_shape) != 2:
            raise ValueError(f"frames must be 2-D (gray), not of shape {tuple(frame_shape)}")
        self.n_frames = int(n_frames)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.nwb_order = nwb_order
        self.frames_seen = 0
        self._brightness = np.full(self.n_frames, np.nan)
        self.maximum = np.zeros(self.frame_shape, self.dtype)
        self.total = np.zeros(self.frame_shape, np.uint32)
        self._in_total = 0  # frames summed in `total`
        self._partial = np.zeros(self.frame_shape, _PARTIAL[self.dtype])
        self._in_partial = 0
        self._fold = np.iinfo(self._partial.dtype).max // np.iinfo(self.dtype).max
        rows = -(-self.frame_shape[0] // BRIGHTNESS_ROW_STRIDE)
        self._brightness_pixels = rows * self.frame_shape[1]
        wide = self._brightness_pixels * np.iinfo(self.dtype).max >= 2**32
        self._brightness_dtype = np.dtype(np.uint64 if wide else np.uint32)
        # Samples are kept block-averaged to the size the motion estimate registers anyway.
        self.sample_block = max(1, math.ceil(max(self.frame_shape) / MAX_SIDE))
        sample_pixels = math.prod(side // self.sample_block for side in self.frame_shape)
        frame_bytes = sample_pixels * self.dtype.itemsize
        indices = sample_indices(self.n_frames, frame_bytes, max_sample_frames, max_sample_bytes)
        shown = self.frame_shape[::-1] if nwb_order else self.frame_shape
        self._samples = SampledFrames(indices, shown, self.dtype, self.sample_block)
        self._shown = np.transpose if nwb_order else np.asarray

    def add(self, index: int, frame: np.ndarray) -> None:
        """Take one decoded frame, the `index`-th of the series (any order; the caller may reuse
        `frame`'s buffer at once: whatever is kept is copied)."""
        if frame.shape != self.frame_shape or frame.dtype != self.dtype:
            raise ValueError(
                f"frame {index} is {frame.dtype} {frame.shape}, not {self.dtype} {self.frame_shape}"
            )
        np.maximum(self.maximum, frame, out=self.maximum)
        np.add(self._partial, frame, out=self._partial)
        self._in_partial += 1
        if self._in_partial >= self._fold:
            self._fold_partial()
        rows = frame[::BRIGHTNESS_ROW_STRIDE]
        value = np.add.reduce(rows, axis=None, dtype=self._brightness_dtype)
        if index >= self.n_frames:  # more frames than announced: keep them all the same
            self._grow(index + 1)
        self._brightness[index] = value / self._brightness_pixels
        self.frames_seen += 1
        self._samples.put(index, self._shown(frame))

    def summary(self) -> FrameSummary:
        """The series' projections, brightness and sampled frames, in display order. The
        samples are handed over (taken out of these accumulators, so they are held once)."""
        self._fold_partial()

        shown = self._shown
        mean = np.empty(shown(self.total).shape, np.float32)
        np.divide(shown(self.total), max(self.frames_seen, 1), out=mean)
        indices, samples = self._samples.take()
        return FrameSummary(
            n_frames=self.n_frames,
            frames_seen=self.frames_seen,
            brightness=self.brightness.copy(),
            mean_projection=mean,
            max_projection=np.ascontiguousarray(shown(self.maximum)),
            sample_indices=indices,
            samples=samples,
            sample_block=self.sample_block,
        )

    @property
    def brightness(self) -> np.ndarray:
        """Mean pixel value per frame (n_frames,), NaN for frames not added (a view)."""
        return self._brightness[: self.n_frames]

    def _fold_partial(self) -> None:
        if self._in_partial:
            self._widen(self._in_total + self._in_partial)
            self.total += self._partial
            self._in_total += self._in_partial
            self._partial[...] = 0
            self._in_partial = 0

    def _widen(self, frames: int) -> None:
        """`total` as uint64 once a sum of `frames` frames could overflow its uint32."""
        if self.total.dtype != np.uint64 and frames * int(np.iinfo(self.dtype).max) >= 2**32:
            self.total = self.total.astype(np.uint64)

    def _grow(self, n_frames: int) -> None:
        """Room for `n_frames`; the buffer at least doubles, so late frames cost O(1) each."""
        if n_frames > len(self._brightness):
            grown = np.full(max(n_frames, 2 * len(self._brightness)), np.nan)
            grown[: len(self._brightness)] = self._brightness
            self._brightness = grown
        self.n_frames = n_frames


class SeriesStats:
    """The statistics of one series (or one video): one accumulator per frame shape, which
    every decoding thread adds to under a lock (`observer`, an `encode.chunks.Observer`).
    One, not one per thread: each holds three full-size frames (max, total, partial sum), and
    the lock is held ~0.05 ms of the ~4 ms a thread spends on a frame."""

    def __init__(
        self,
        n_frames: int,
        max_sample_frames: int = MAX_SAMPLE_FRAMES,
        max_sample_bytes: int = MAX_SAMPLE_BYTES,
    ) -> None:
        self.n_frames = n_frames
        self.budget = (max_sample_frames, max_sample_bytes)
        self._made: dict[tuple[int, ...], FrameStats] = {}
        self._lock = threading.Lock()

    def observer(self, frame_shape: tuple[int, ...]) -> _LockedShare:
        shape = tuple(frame_shape)
        with self._lock:
            stats = self._made.get(shape)
            if stats is None:
                frames, size = self.budget
                stats = FrameStats(
                    self.n_frames, shape, nwb_order=True, max_sample_frames=frames,
                    max_sample_bytes=size,
                )  # fmt: skip
                self._made[shape] = stats
        return _LockedShare(stats, self._lock)

    def summary(self) -> FrameSummary | None:
        """None when no frame was decoded."""
        with self._lock:
            made, self._made = list(self._made.values()), {}
        if len(made) > 1:
            shapes = ", ".join(str(stats.frame_shape) for stats in made)
            raise ValueError(f"frames of one series have different shapes: {shapes}")
        return made[0].summary() if made and made[0].frames_seen else None


class _LockedShare:
    """One decoding thread's view of its series' accumulator (`add` per frame)."""

    def __init__(self, stats: FrameStats, lock: threading.Lock) -> None:
        self._stats, self._lock = stats, lock

    def add(self, index: int, frame: np.ndarray) -> None:
        with self._lock:
            self._stats.add(index, frame)

    def close(self) -> None:
        """Nothing to hand back: the accumulator is the series'."""


_SUMMARY_ARRAYS = ("brightness", "mean_projection", "max_projection", "sample_indices", "samples")


def write_summary(group: h5py.Group, summary: FrameSummary) -> None:
    """`summary` as datasets of `group` (a chunk file's, so a reused chunk file keeps its
    video's statistics); the samples deflated."""
    group.attrs.update(
        n_frames=summary.n_frames,
        frames_seen=summary.frames_seen,
        sample_block=summary.sample_block,
    )
    for name in _SUMMARY_ARRAYS:
        value = getattr(summary, name)
        compression = "gzip" if name == "samples" and value.size else None
        group.create_dataset(name, data=value, compression=compression)


def read_summary(group: h5py.Group) -> FrameSummary:
    arrays = {name: group[name][()] for name in _SUMMARY_ARRAYS}
    return FrameSummary(
        n_frames=int(group.attrs["n_frames"]),
        frames_seen=int(group.attrs["frames_seen"]),
        sample_block=int(group.attrs["sample_block"]),
        **arrays,
    )


def placed(
    parts: Sequence[tuple[int, int, FrameSummary]],
    n_frames: int,
    max_sample_frames: int = MAX_SAMPLE_FRAMES,
    max_sample_bytes: int = MAX_SAMPLE_BYTES,
) -> FrameSummary:
    """One series' summary from its videos' (`(first row, frames taken, summary)` each): the
    brightness of the frames taken at their rows, projections over each video's frames, and
    the samples thinned evenly to the series' budget."""
    brightness = np.full(n_frames, np.nan)
    indices, samples = [], []
    for first, taken, part in parts:
        count = min(taken, len(part.brightness), n_frames - first)
        brightness[first : first + count] = part.brightness[:count]
        kept = part.sample_indices < count
        indices.append(part.sample_indices[kept] + first)
        samples.append(part.samples[kept])
    seen = sum(part.frames_seen for _, _, part in parts)
    mean = np.zeros(parts[0][2].mean_projection.shape)
    for _, _, part in parts:
        mean += part.mean_projection.astype(np.float64) * part.frames_seen
    maximum = np.maximum.reduce([part.max_projection for _, _, part in parts])
    every, stack = np.concatenate(indices), np.concatenate(samples)
    frame_bytes = int(np.prod(stack.shape[1:])) * stack.dtype.itemsize
    wanted = sample_indices(len(every), frame_bytes, max_sample_frames, max_sample_bytes)
    return FrameSummary(
        n_frames=n_frames,
        frames_seen=seen,
        brightness=brightness,
        mean_projection=(mean / max(seen, 1)).astype(np.float32),
        max_projection=maximum,
        sample_indices=every[wanted],
        samples=stack[wanted],
        sample_block=parts[0][2].sample_block,
    )
