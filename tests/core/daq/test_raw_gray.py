"""Uncompressed gray (GREY) videos read straight from the file, not through ffmpeg: the same
pixels as ffmpeg decodes, and ffmpeg whenever the file is not what the raw reader knows."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from miniscope_core.daq import video
from miniscope_core.daq.avi import RawGrayStream, avi_index
from miniscope_core.daq.video import VideoStream, open_video
from miniscope_core.errors import MiniscopeFormatError
from miniscope_core.testing.synthetic import write_video


def _frames(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    width, height = size
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(n)]


def _grey(path: Path, n: int = 20, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    frames = _frames(n, size)
    write_video(path, frames, "GREY", size)
    return frames


def _chunk_header_at(path: Path, frame: int) -> int:
    index = avi_index(path)
    assert index is not None and index.positions is not None
    return int(index.positions[frame]) - 8


@pytest.mark.parametrize("size", [(64, 48), (63, 47)])
def test_frames_read_straight_from_the_file_are_the_frames_written(tmp_path, size):
    """Even and odd sizes, in the DAQ's order and in NWB's (transposed), from frame 0 or any
    later frame (every raw frame is a keyframe)."""
    path = tmp_path / "v.avi"
    truth = _grey(path, size=size)
    with open_video(path) as stream:
        assert isinstance(stream, RawGrayStream)
        np.testing.assert_array_equal(np.stack(list(stream.frames)), np.stack(truth))
    with open_video(path, nwb_order=True, first=7) as stream:
        assert stream.frame_shape == size
        np.testing.assert_array_equal(
            np.stack(list(stream.frames)), np.stack(truth[7:]).swapaxes(1, 2)
        )


def test_an_index_counting_from_the_file_start_is_read_too(tmp_path):
    """Writers differ in what idx1 offsets count from (the 'movi' tag, or the file's start)."""
    path = tmp_path / "v.avi"
    truth = _grey(path)
    data = bytearray(path.read_bytes())
    movi = data.find(b"movi")
    at = data.rfind(b"idx1") + 8
    entries = (len(data) - at) // 16
    for entry in range(entries):
        (offset,) = struct.unpack_from("<I", data, at + 16 * entry + 8)
        struct.pack_into("<I", data, at + 16 * entry + 8, offset + movi)
    path.write_bytes(bytes(data))
    with open_video(path) as stream:
        assert isinstance(stream, RawGrayStream)
        np.testing.assert_array_equal(np.stack(list(stream.frames)), np.stack(truth))


def test_a_damaged_chunk_sends_the_whole_video_through_ffmpeg(tmp_path):
    """A frame whose chunk header is not the index's: the raw reader does not guess."""
    path = tmp_path / "v.avi"
    _grey(path)
    at = _chunk_header_at(path, 5)
    with path.open("r+b") as handle:
        handle.seek(at)
        handle.write(b"JUNK")
    with open_video(path) as stream:
        assert isinstance(stream, VideoStream)


def test_a_first_frame_that_ffmpeg_decodes_otherwise_sends_the_video_through_ffmpeg(
    tmp_path, monkeypatch
):
    """Another writer's row order or padding would show in the first frame: ffmpeg decides."""
    path = tmp_path / "v.avi"
    truth = _grey(path)

    class Flipped(VideoStream):
        def read_into(self, frame: np.ndarray) -> bool:
            got = super().read_into(frame)
            frame[:] = frame[::-1].copy()
            return got

    monkeypatch.setattr(video, "VideoStream", Flipped)
    with open_video(path) as stream:
        assert isinstance(stream, Flipped)
        assert np.array_equal(next(iter(stream.frames)), truth[0][::-1])


def test_a_frame_moved_after_opening_is_an_error_naming_the_file_not_other_pixels(tmp_path):
    path = tmp_path / "v.avi"
    truth = _grey(path)
    stream = open_video(path)
    assert isinstance(stream, RawGrayStream)
    with path.open("r+b") as handle:
        handle.seek(_chunk_header_at(path, 3))
        handle.write(b"JUNK")
    frame = np.empty(stream.frame_shape, np.uint8)
    with stream:
        for expected in truth[:3]:
            assert stream.read_into(frame) and np.array_equal(frame, expected)
        with pytest.raises(MiniscopeFormatError, match=r"v\.avi.*frame 3 is not where"):
            stream.read_into(frame)


def test_a_truncated_or_unfinished_video_goes_through_ffmpeg(tmp_path):
    """Cut inside its last frame (as an interrupted recording leaves it): not finalised."""
    path = tmp_path / "v.avi"
    _grey(path)
    data = path.read_bytes()
    path.write_bytes(data[: _chunk_header_at(path, 19) + 100])
    with open_video(path) as stream:
        assert isinstance(stream, VideoStream)
