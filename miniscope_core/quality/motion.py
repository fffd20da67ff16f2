"""A rigid motion estimate per sampled frame: how far the brain moved under the lens.

Each sampled frame is registered against a reference (the mean of the sample) with
scikit-image's `phase_cross_correlation`, a well-kept implementation of subpixel
cross-correlation, rather than a registration of our own. Three things make it hold on
one-photon frames:

- a background that does not move with the tissue (the lens' vignetting, the sensor's fixed
  pattern) would pull every estimate towards zero, so frames are band-passed first (a
  difference of Gaussians keeps cell-sized structure) and windowed (a Hann window, so the
  frame's edges are not taken for structure); the band-pass already whitens the spectrum, so
  the plain cross-correlation is used (phase normalisation amplified the noise: errors of 1 px);
- a frame's own noise is part of a mean it is compared with, and would pull it to 0 too, so
  each frame is compared with the mean of the others (its spectrum subtracted from the sum);
- a mean over moving frames is blurred, so a first pass in whole pixels aligns them and the
  subpixel pass compares each frame with the mean of the others so aligned.

The cost is bounded whatever the recording: at most `max_frames` frames, each block-averaged
so that its longer side is at most `max_side` pixels (a 600x600 frame: 3x3 blocks, 200x200),
registered to 1/`upsample_factor` of a downsampled pixel (0.3 px for V4 frames); shifts are
given in full-resolution pixels. Frames are cropped (centred) to a side whose FFT is fast and
held as float16, their spectra in single precision: 100 frames of 600x600 take ~12 MB.
BLAS is held to one thread meanwhile when threadpoolctl is installed: the small matrix
products of the subpixel step otherwise spin every core (3x the CPU on a busy machine).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

MAX_FRAMES = 200
MAX_SIDE = 256
UPSAMPLE_FACTOR = 10


@dataclass(frozen=True, eq=False)  # arrays: compare fields, not objects
class MotionEstimate:
    """Displacement of each sampled frame's picture from the reference, in full-res pixels.

    A frame whose picture moved 3 px down and 2 px right of the reference has (dy, dx) =
    (3, 2); registering it back is the opposite shift.
    """

    indices: np.ndarray  # int64 (k,): the frames' indices in their series
    shifts: np.ndarray  # float64 (k, 2): (dy, dx), full-resolution pixels
    downsample: int  # the block size frames were averaged by before registration

    @property
    def displacement(self) -> np.ndarray:
        """Distance from the reference per frame (px)."""
        return np.hypot(self.shifts[:, 0], self.shifts[:, 1])

    @property
    def max_displacement_px(self) -> float | None:
        """The largest distance from the reference (px); None without frames."""
        return float(self.displacement.max()) if len(self.indices) else None

    def times(self, frame_times_s: np.ndarray) -> np.ndarray:
        """The sampled frames' times, given every frame's time in the series (s)."""
        return np.asarray(frame_times_s, dtype=np.float64)[self.indices]


def estimate_motion(
    indices: np.ndarray,
    frames: np.ndarray,
    *,
    max_frames: int = MAX_FRAMES,
    max_side: int = MAX_SIDE,
    upsample_factor: int = UPSAMPLE_FACTOR,
    binned: int = 1,
) -> MotionEstimate:
    """Rigid (dy, dx) of each of `frames` (k, height, width; display order) from their mean.

    `indices` are the frames' indices in their series (`FrameSummary.sample_indices`); more
    than `max_frames` frames are thinned evenly first. Fewer than two frames, or frames too
    small to register (under 8 px a side once downsampled), give zero shifts. `binned`: the
    frames are already block means of `binned` x `binned` pixels (`FrameSummary.samples`).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if frames.ndim != 3 or len(frames) != len(indices):
        raise ValueError("frames must be (k, height, width), one per index")
    if len(indices) > max_frames:
        keep = np.unique(np.linspace(0, len(indices) - 1, max_frames).round().astype(np.int64))
        indices, frames = indices[keep], frames[keep]
    block = max(1, math.ceil(max(frames.shape[1:]) / max_side))
    if len(indices) < 2 or min(frames.shape[1:]) // block < 8:
        return MotionEstimate(indices, np.zeros((len(indices), 2)), block * binned)
    size = (_fast_length(frames.shape[1] // block), _fast_length(frames.shape[2] // block))
    prepared = np.empty((len(frames), *size), np.float16)  # 100 V4 frames: 8 MB
    for row, frame in enumerate(frames):
        prepared[row] = _prepare(frame, block, size)
    shifts = np.zeros((len(frames), 2))
    with _one_blas_thread():
        for upsample in (1, upsample_factor):
            shifts = _register(prepared, shifts, upsample)
    scale = block * binned  # a registered pixel in full-resolution pixels
    return MotionEstimate(indices, -shifts * scale, scale)  # registration shift -> motion


def _register(prepared: np.ndarray, shifts: np.ndarray, upsample: int) -> np.ndarray:
    """Each frame's registration shift against the mean of the others, moved by `shifts`.

    The frames are held in float16 (half the memory; a band-passed frame needs no more) and
    transformed in single precision; their spectra are made again when needed rather than
    kept (100 V4 frames' would take 32 MB).
    """
    from skimage.registration import phase_cross_correlation

    total: np.ndarray | None = None
    for frame, shift in zip(prepared, shifts, strict=True):
        moved = _moved(np.fft.fft2(frame.astype(np.float32)), shift)
        total = moved if total is None else np.add(total, moved, out=total)
    assert total is not None  # two frames at least
    found = np.empty_like(shifts)
    for row, frame in enumerate(prepared):
        own = np.fft.fft2(frame.astype(np.float32))
        others = total - _moved(own, shifts[row])
        shift, _, _ = phase_cross_correlation(
            others, own, space="fourier", upsample_factor=upsample, normalization=None
        )
        found[row] = shift
    return found


def _moved(spectrum: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`spectrum` (a frame's Fourier transform) of the frame moved by the registration `shift`
    (rows, columns): a new array, or `spectrum` itself when the shift is zero."""
    if not shift.any():
        return spectrum
    rows = np.fft.fftfreq(spectrum.shape[0])[:, None]
    columns = np.fft.fftfreq(spectrum.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (rows * shift[0] + columns * shift[1]))
    moved: np.ndarray = spectrum * ramp.astype(spectrum.dtype)
    return moved


def _prepare(frame: np.ndarray, block: int, size: tuple[int, int]) -> np.ndarray:
    """Block-averaged, cropped to `size` (centred), band-passed and windowed: what the
    cross-correlation should compare.

    The difference of Gaussians is scipy.ndimage's filter twice (skimage.filters' own would
    import ~50 MB of modules into the converter's process for the same two calls).
    """
    from scipy.ndimage import gaussian_filter

    height, width = (side // block * block for side in frame.shape)
    small = frame[:height, :width].astype(np.float32)
    if block > 1:
        small = small.reshape(height // block, block, width // block, block).mean(axis=(1, 3))
    top, left = ((have - want) // 2 for have, want in zip(small.shape, size, strict=True))
    small = small[top : top + size[0], left : left + size[1]]
    # Cells are 5-15 full-resolution px across: keep structure from ~1 to ~10 px.
    high = max(2.0, 8.0 / block)
    low = min(1.0, high / 2)
    banded = gaussian_filter(small, low, mode="nearest")
    banded -= gaussian_filter(small, high, mode="nearest")
    result: np.ndarray = banded * _window(banded.shape)
    return result


def _fast_length(side: int) -> int:
    """The longest length <= `side` whose only prime factors are 2, 3 and 5: a fast FFT (a V4
    frame's 202 block means, 2 x 101, took 1.4x as long as 200)."""
    return max(n for n in range(max(side - 64, 1), side + 1) if _smooth(n))


def _smooth(n: int) -> bool:
    for prime in (2, 3, 5):
        while n % prime == 0:
            n //= prime
    return n == 1


@functools.lru_cache(maxsize=4)
def _window(shape: tuple[int, int]) -> np.ndarray:
    """A 2-D Hann window (numpy's), so the frame's edges are not taken for structure."""
    hann: np.ndarray = np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)
    return hann


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional helper: without it BLAS keeps its own threads
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
