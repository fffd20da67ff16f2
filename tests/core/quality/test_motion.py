"""The motion estimate recovers known shifts of one-photon-like frames within half a pixel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from miniscope_core.quality.model import ImagingSeries
from miniscope_core.quality.motion import estimate_motion
from miniscope_core.quality.stats import FrameStats

TOLERANCE_PX = 0.5


def test_integer_and_subpixel_shifts_are_recovered(make_frames: Callable[..., np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    shifts = np.zeros((40, 2))  # a mouse mostly still, with a few movements
    shifts[5] = (3, -2)
    shifts[12] = (-6, 4)
    shifts[20] = (1.5, 2.5)
    shifts[27] = (-0.4, 0.7)
    shifts[33] = (9.25, -7.75)
    shifts[rng.choice(40, 10, replace=False)] += rng.normal(0, 0.3, (10, 2))
    frames = make_frames(shifts)
    motion = estimate_motion(np.arange(100, 140), frames)
    np.testing.assert_array_equal(motion.indices, np.arange(100, 140))
    # Against the mean of the frames, which sits near the still frames' position:
    assert np.abs(motion.shifts - shifts).max() < TOLERANCE_PX + 0.3
    offset = (motion.shifts - shifts).mean(axis=0)
    assert np.abs(motion.shifts - offset - shifts).max() < TOLERANCE_PX
    assert abs(motion.max_displacement_px - np.hypot(9.25, 7.75)) < 1.0  # type: ignore[operator]


def test_large_frames_are_downsampled_and_shifts_given_in_full_resolution_px(
    make_frames: Callable[..., np.ndarray],
) -> None:
    shifts = np.array([(0, 0), (0, 0), (6, -3), (0, 0), (-4.5, 8), (0, 0), (2, 2), (0, 0)], float)
    frames = make_frames(shifts, height=600, width=600, seed=1)  # a V4 frame
    motion = estimate_motion(np.arange(8), frames)
    assert motion.downsample == 3
    relative = motion.shifts - (motion.shifts - shifts).mean(axis=0)
    assert np.abs(relative - shifts).max() < TOLERANCE_PX


def test_the_frame_count_is_capped_and_times_follow_the_indices(
    make_frames: Callable[..., np.ndarray],
) -> None:
    frames = make_frames(np.zeros((30, 2)), height=64, width=64)
    motion = estimate_motion(np.arange(0, 300, 10), frames, max_frames=7)
    assert len(motion.indices) == 7 and motion.indices[0] == 0 and motion.indices[-1] == 290
    assert np.abs(motion.shifts).max() < TOLERANCE_PX
    times = np.arange(300) / 20.0
    np.testing.assert_allclose(motion.times(times), motion.indices / 20.0)


def test_too_few_or_too_small_frames_give_zero_motion() -> None:
    one = estimate_motion(np.array([4]), np.zeros((1, 32, 32), np.uint8))
    assert one.shifts.shape == (1, 2) and one.max_displacement_px == 0.0
    none = estimate_motion(np.zeros(0, int), np.zeros((0, 32, 32), np.uint8))
    assert none.max_displacement_px is None
    tiny = estimate_motion(np.arange(3), np.zeros((3, 4, 4), np.uint8))
    assert (tiny.shifts == 0).all()


def test_dark_frames_are_left_out_of_a_series_motion(
    make_frames: Callable[..., np.ndarray],
) -> None:
    shifts = np.zeros((50, 2))
    frames = make_frames(shifts, height=96, width=128)
    noise = np.random.default_rng(0).integers(0, 6, frames.shape, dtype=np.uint8)
    dark = (10, 11, 30)  # the LED off: sensor noise only, which registers anywhere (~30 px)
    with_dark = np.where(np.isin(np.arange(50), dark)[:, None, None], noise, frames)
    assert (estimate_motion(np.arange(50), with_dark).max_displacement_px or 0) > 5
    stats = FrameStats(50, (96, 128), max_sample_frames=50)
    for index, frame in enumerate(frames):
        stats.add(index, noise[index] if index in dark else frame)
    series = ImagingSeries.from_summary("s", "Miniscope", "", stats.summary(), np.arange(50) / 20)
    assert series.motion is not None
    assert not set(dark) & set(series.motion.indices.tolist())
    assert len(series.motion.indices) == 47
    assert series.max_motion_px is not None and series.max_motion_px < TOLERANCE_PX
