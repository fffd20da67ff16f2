"""FrameStats: what the decoder threads gather equals numpy over all frames, in any order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from miniscope_core.quality.stats import FrameStats, SeriesStats, sample_indices


def _frames(n: int, shape: tuple[int, int], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, (n, *shape), dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_projections_and_brightness_equal_numpy_over_all_frames(dtype: type) -> None:
    frames = _frames(600, (21, 13), dtype)  # > 257 frames: the uint16 partial sum is folded
    stats = FrameStats(len(frames), frames.shape[1:], dtype)
    buffer: np.ndarray = np.empty(frames.shape[1:], dtype)
    for index, frame in enumerate(frames):
        buffer[...] = frame  # the decoder reuses one buffer
        stats.add(index, buffer)
    summary = stats.summary()
    assert summary.frames_seen == 600
    np.testing.assert_array_equal(summary.max_projection, frames.max(axis=0))
    np.testing.assert_allclose(summary.mean_projection, frames.mean(axis=0), rtol=1e-6)
    expected = frames[:, ::4, :].reshape(len(frames), -1).mean(axis=1)
    np.testing.assert_allclose(summary.brightness, expected)
    assert summary.max_projection.dtype == dtype


def test_saturated_frames_do_not_overflow_the_sum() -> None:
    frames = np.full((1000, 4, 4), 255, np.uint8)
    stats = FrameStats(len(frames), (4, 4))
    for index, frame in enumerate(frames):
        stats.add(index, frame)
    assert (stats.summary().mean_projection == 255).all()


def test_the_total_widens_before_its_uint32_could_overflow() -> None:
    """uint16 frames: 65,537 saturated ones would overflow a uint32 sum."""
    frame = np.full((2, 2), 65535, np.uint16)
    stats = FrameStats(70_000, (2, 2), np.uint16)
    for index in range(70_000):
        stats.add(index, frame)
    summary = stats.summary()
    assert stats.total.dtype == np.uint64 and (summary.mean_projection == 65535).all()


def _decoded_by_two_threads(frames: np.ndarray, stats: SeriesStats) -> None:
    """Two threads, each with its own view, add halves of `frames` (NWB order) out of order."""
    rng = np.random.default_rng(2)
    halves = np.array_split(rng.permutation(len(frames)), 2)

    def decode(rows: np.ndarray) -> None:
        sink = stats.observer(frames.shape[1:][::-1])
        buffer = np.empty(frames.shape[1:][::-1], frames.dtype)
        for index in rows:
            buffer[...] = frames[index].T  # the decoder reuses one buffer
            sink.add(int(index), buffer)
        sink.close()

    threads = [threading.Thread(target=decode, args=(rows,)) for rows in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_two_threads_out_of_order_equal_one_pass() -> None:
    frames = _frames(500, (16, 24), np.uint8, seed=1)
    one = FrameStats(len(frames), (24, 16), nwb_order=True)  # as the series' threads see them
    for index, frame in enumerate(frames):
        one.add(index, np.ascontiguousarray(frame.T))
    series = SeriesStats(len(frames))
    _decoded_by_two_threads(frames, series)
    both, single = series.summary(), one.summary()
    assert both is not None
    np.testing.assert_array_equal(both.max_projection, single.max_projection)
    np.testing.assert_array_equal(both.mean_projection, single.mean_projection)
    np.testing.assert_array_equal(both.brightness, single.brightness)
    np.testing.assert_array_equal(both.sample_indices, single.sample_indices)
    np.testing.assert_array_equal(both.samples, single.samples)
    np.testing.assert_array_equal(both.samples, frames[both.sample_indices])
    assert both.frames_seen == 500


def test_the_threads_of_a_series_share_one_accumulator() -> None:
    """Full-size arrays once per series, however many threads decode it."""
    series = SeriesStats(10)
    first, second = series.observer((24, 16)), series.observer((24, 16))
    assert first._stats is second._stats
    assert series.summary() is None  # no frame decoded


def test_the_subsample_is_bounded_by_frames_and_bytes_and_evenly_spaced() -> None:
    frames = _frames(1000, (32, 32), np.uint8, seed=3)
    stats = FrameStats(len(frames), (32, 32), max_sample_frames=50, max_sample_bytes=10**9)
    for index, frame in enumerate(frames):
        stats.add(index, frame)
    summary = stats.summary()
    assert len(summary.sample_indices) == 50
    assert summary.sample_indices[0] == 0 and summary.sample_indices[-1] == 999
    assert set(np.diff(summary.sample_indices)) <= {20, 21}
    np.testing.assert_array_equal(summary.samples, frames[summary.sample_indices])
    small = FrameStats(1000, (32, 32), max_sample_bytes=32 * 32 * 7)  # room for 7 frames
    for index, frame in enumerate(frames):
        small.add(index, frame)
    assert small.summary().samples.nbytes <= 32 * 32 * 7
    assert len(sample_indices(10**6, 200 * 200)) == 100  # V4 frames as 3x3 block means: 4 MB
    assert len(sample_indices(10**6, 600 * 600)) == 23  # 8 MiB would hold 23 at full size


def test_large_frames_are_sampled_as_block_means() -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (30, 600, 600), dtype=np.uint8)
    stats = FrameStats(len(frames), (600, 600))
    for index, frame in enumerate(frames):
        stats.add(index, frame)
    summary = stats.summary()
    assert summary.sample_block == 3 and summary.samples.shape == (30, 200, 200)
    means = frames.reshape(30, 200, 3, 200, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(summary.samples, means, atol=0.5)  # rounded to the frames' dtype
    np.testing.assert_array_equal(summary.max_projection, frames.max(axis=0))  # full resolution
    assert len(sample_indices(3, 100)) == 3


def test_nwb_order_frames_give_display_order_images() -> None:
    frames = _frames(10, (16, 24), np.uint8, seed=4)  # (frame, height, width)
    stats = FrameStats(10, (24, 16), nwb_order=True)  # the decoder's (width, height)
    for index, frame in enumerate(frames):
        stats.add(index, np.ascontiguousarray(frame.T))
    summary = stats.summary()
    np.testing.assert_array_equal(summary.max_projection, frames.max(axis=0))
    np.testing.assert_array_equal(summary.samples, frames[summary.sample_indices])


def test_missing_and_extra_frames() -> None:
    frames = _frames(12, (8, 8), np.uint8, seed=5)
    stats = FrameStats(10, (8, 8))  # the video holds more frames than it announced
    for index in [0, 1, 2, 11]:
        stats.add(index, frames[index])
    summary = stats.summary()
    assert summary.n_frames == 12 and summary.frames_seen == 4
    assert np.isnan(summary.brightness[3:11]).all()
    np.testing.assert_allclose(summary.mean_projection, frames[[0, 1, 2, 11]].mean(axis=0))


def test_wrong_frames_are_refused() -> None:
    stats = FrameStats(5, (8, 8))
    with pytest.raises(ValueError, match="not uint8"):
        stats.add(0, np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        FrameStats(5, (8, 8), np.float32)
    with pytest.raises(ValueError, match="2-D"):
        FrameStats(5, (8, 8, 3))
    series = SeriesStats(5)
    for shape in ((8, 8), (8, 4)):
        series.observer(shape).add(0, np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="different shapes"):
        series.summary()
