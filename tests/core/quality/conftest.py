"""One-photon-like frames for the quality tests: cells on a moving tissue, a lens' vignetting
and noise that stay put, so a motion estimate is tried on what makes real ones hard."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage

Shifts = np.ndarray  # (k, 2): (dy, dx) of the tissue per frame, px


def one_photon_frames(
    shifts: Shifts, height: int = 240, width: int = 320, seed: int = 0
) -> np.ndarray:
    """uint8 (k, height, width): the same tissue moved by each (dy, dx) (subpixel: by its
    Fourier phase), under a fixed vignetting and fresh noise per frame."""
    rng = np.random.default_rng(seed)
    pad = int(np.ceil(np.abs(shifts).max(initial=0))) + 8
    big = (height + 2 * pad, width + 2 * pad)
    cells = np.zeros(big)
    n_cells = big[0] * big[1] // 300
    cells[rng.integers(0, big[0], n_cells), rng.integers(0, big[1], n_cells)] = rng.uniform(
        0.4, 1.0, n_cells
    )
    tissue = ndimage.gaussian_filter(cells, 3.0) * 1500
    tissue += ndimage.gaussian_filter(rng.normal(size=big), 12.0) * 150  # neuropil
    spectrum = np.fft.fft2(tissue)
    rows, columns = np.mgrid[:height, :width]
    radius2 = (rows - height / 2) ** 2 + (columns - width / 2) ** 2
    vignette = 30 + 110 * np.exp(-radius2 / (2 * (0.4 * max(height, width)) ** 2))
    frames = np.empty((len(shifts), height, width), np.uint8)
    for k, shift in enumerate(shifts):
        moved = np.fft.ifft2(ndimage.fourier_shift(spectrum, shift)).real
        frame = vignette + moved[pad : pad + height, pad : pad + width]
        frames[k] = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255)
    return frames


@pytest.fixture
def make_frames() -> Callable[..., np.ndarray]:
    return one_photon_frames
