"""The decode -> deflate -> write pipeline: frame counts from the AVI index, frames straight from
ffmpeg in NWB order, ffmpeg stopped when the reader stops, and what a probe knows of a video."""

from __future__ import annotations

import re
import subprocess
import time
import zlib
from pathlib import Path

import h5py
import imageio_ffmpeg
import numpy as np
import pytest

from miniscope_core.daq import video
from miniscope_core.daq.video import VideoInfo, count_frames, open_video
from miniscope_core.encode import chunks
from miniscope_core.encode.chunks import (
    ChunkFile,
    ChunkWriter,
    Share,
    copy_chunks,
    encode_into,
    encode_video,
    probe_video,
    write_chunks,
)
from miniscope_core.encode.deflate import Deflater
from miniscope_core.testing.synthetic import write_video

SIZE = (64, 48)  # width, height


def _frames(n: int, color: bool = False, seed: int = 0) -> list[np.ndarray]:
    shape = (SIZE[1], SIZE[0], 3) if color else (SIZE[1], SIZE[0])
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def _ffmpeg_packets(path: Path) -> int:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0", "-c", "copy", "-f", "null", "-", "-progress", "pipe:1"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return int(re.findall(r"^frame=(\d+)$", out, flags=re.MULTILINE)[-1])


@pytest.mark.parametrize(("codec", "color"), [("FFV1", False), ("GREY", False), ("MJPG", True)])
@pytest.mark.parametrize("n", [1, 37])
def test_frames_counted_from_the_index_as_ffmpeg_counts_packets(tmp_path, codec, color, n):
    video = tmp_path / "v.avi"
    write_video(video, _frames(n, color), codec, SIZE)
    assert count_frames(video) == _ffmpeg_packets(video) == n


def test_a_file_without_a_plain_index_is_counted_by_ffmpeg(tmp_path):
    """No idx1 (its id overwritten): ffmpeg finds the packets by scanning; the count agrees."""
    video = tmp_path / "v.avi"
    write_video(video, _frames(20), "FFV1", SIZE)
    data = video.read_bytes()
    assert data.count(b"idx1") == 1
    video.write_bytes(data.replace(b"idx1", b"JUNK"))
    assert count_frames(video) == 20


@pytest.mark.parametrize(("codec", "color"), [("FFV1", False), ("GREY", False)])
def test_frames_come_out_of_ffmpeg_in_nwb_order_unchanged(tmp_path, codec, color):
    video = tmp_path / "v.avi"
    truth = _frames(7, color)
    write_video(video, truth, codec, SIZE)
    with open_video(video, nwb_order=True) as stream:
        assert stream.frame_shape == SIZE
        frame = np.empty(stream.frame_shape, np.uint8)
        for expected in truth:
            assert stream.read_into(frame)
            np.testing.assert_array_equal(frame, expected.T)
        assert not stream.read_into(frame)
    np.testing.assert_array_equal(np.stack(list(open_video(video).frames)), np.stack(truth))


def test_a_reader_that_stops_early_stops_ffmpeg(tmp_path):
    video = tmp_path / "v.avi"
    write_video(video, _frames(50), "FFV1", SIZE)
    stream = open_video(video, nwb_order=True)
    process = stream._process
    assert stream.read_into(np.empty(stream.frame_shape, np.uint8))
    stream.close()
    assert process.poll() is not None


def test_write_chunks_stops_at_its_limit_and_inflates_to_the_frames(tmp_path):
    video = tmp_path / "v.avi"
    truth = _frames(30)
    write_video(video, truth, "FFV1", SIZE)
    with h5py.File(tmp_path / "o.h5", "w") as h5:
        data = h5.create_dataset("d", (12, *SIZE), np.uint8, chunks=(1, *SIZE), compression="gzip")
        with open_video(video, nwb_order=True) as stream:
            written, error = write_chunks([Share(stream, 2, 10)], ChunkWriter(data), Deflater(), 2)
        assert (written, error) == (10, "")
        stored = [data.id.read_direct_chunk((row, 0, 0))[1] for row in range(2, 12)]
    for chunk, expected in zip(stored, truth, strict=False):
        frame = np.frombuffer(zlib.decompress(chunk), np.uint8).reshape(SIZE)
        np.testing.assert_array_equal(frame, expected.T)


def test_a_write_that_fails_stops_every_thread_at_once_and_is_raised(tmp_path, monkeypatch):
    """Disk full while storing the second share's frames: the error comes out, and the first
    share's thread stops within a few frames instead of decoding the rest of its video."""
    video = tmp_path / "v.avi"
    write_video(video, _frames(400), "GREY", SIZE)
    put = chunks.ChunkWriter.put

    def full_from_row_200(store, row, chunk):
        if row >= 200:
            raise OSError("No space left on device")
        time.sleep(0.01)  # a slow disk: the first share's 200 frames take 2 s, not a blink,
        put(store, row, chunk)  # so the second decoder's first frame (and error) comes first

    monkeypatch.setattr(chunks.ChunkWriter, "put", full_from_row_200)
    with h5py.File(tmp_path / "o.h5", "w") as h5:
        data = h5.create_dataset("d", (400, *SIZE), np.uint8, chunks=(1, *SIZE), compression="gzip")
        with open_video(video, nwb_order=True) as head, open_video(video, nwb_order=True) as tail:
            shares = [Share(head, 0, 200), Share(tail, 200, 200)]
            with pytest.raises(OSError, match="No space left"):
                write_chunks(shares, ChunkWriter(data), Deflater(), 2)
            frame = np.empty(head.frame_shape, np.uint8)
            left = sum(1 for _ in iter(lambda: head.read_into(frame), False))
    # Of the 400 frames the first decoder would give, its share is the first 200: a thread that
    # waited for its whole share to finish leaves exactly 200 (a loaded machine lets it run
    # ahead for a few dozen frames before it sees the error, so no tighter bound holds).
    assert left > 200


def test_two_threads_on_one_share_store_every_frame_at_its_row(tmp_path):
    """A fast decoder (GREY) with two deflating threads taking its frames in turn."""
    video = tmp_path / "v.avi"
    truth = _frames(60)
    write_video(video, truth, "GREY", SIZE)
    seen: list[int] = []
    with h5py.File(tmp_path / "o.h5", "w") as h5:
        data = h5.create_dataset("d", (60, *SIZE), np.uint8, chunks=(1, *SIZE), compression="gzip")
        with open_video(video, nwb_order=True) as stream:
            store = ChunkWriter(data, seen.append)
            result = write_chunks([Share(stream, 0, None)], store, Deflater(), 2)
        assert result == (60, "") and sum(seen) == 60
        np.testing.assert_array_equal(data[:], np.stack([frame.T for frame in truth]))


def test_a_probe_knows_the_video_and_a_chunk_file_adds_where_its_frames_are(tmp_path):
    video = tmp_path / "v.avi"
    write_video(video, _frames(9), "GREY", SIZE)
    probed = probe_video(video, color=False, pixels=True)
    assert type(probed) is VideoInfo
    assert (probed.n_frames, probed.frame_shape, probed.decode_error) == (9, SIZE, "")
    chunks = encode_video(video, tmp_path / "v.h5")
    assert isinstance(chunks, ChunkFile) and chunks.path == tmp_path / "v.h5"
    assert (chunks.n_frames, chunks.frame_shape, chunks.size) == (9, SIZE, probed.size)
    assert chunks.is_current_for(video, Deflater())
    with h5py.File(tmp_path / "o.h5", "w") as h5:
        data = h5.create_dataset("d", (9, *SIZE), np.uint8, chunks=(1, *SIZE), compression="gzip")
        with pytest.raises(TypeError, match="no chunk file"):
            copy_chunks(probed, ChunkWriter(data), 0, 9)
        copy_chunks(chunks, ChunkWriter(data), 0, 9)
        assert data.id.get_num_chunks() == 9


def _stored_frames(data: h5py.Dataset, rows: range) -> np.ndarray:
    chunks = [data.id.read_direct_chunk((row, 0, 0))[1] for row in rows]
    frames = [np.frombuffer(zlib.decompress(chunk), np.uint8) for chunk in chunks]
    return np.stack(frames).reshape(len(rows), *data.shape[1:])


def _encoded_into(path: Path, out: Path, n: int) -> tuple[int, np.ndarray]:
    """`encode_into` of the first `n` frames of `path` from row 3: (written, frames stored)."""
    probed = probe_video(path, color=False, pixels=True)
    with h5py.File(out, "w") as h5:
        shape = (n + 3, *SIZE)
        data = h5.create_dataset("d", shape, np.uint8, chunks=(1, *SIZE), compression="gzip")
        written = encode_into(probed, ChunkWriter(data), 3, n, Deflater(), 2)
        return written, _stored_frames(data, range(3, 3 + written))


@pytest.mark.parametrize("codec", ["FFV1", "GREY"])
def test_a_long_video_is_decoded_in_two_halves_that_meet_exactly(tmp_path, codec, monkeypatch):
    """FFV1 has a keyframe every 12 frames: the second half starts at the one nearest the middle
    (GREY: every frame is one)."""
    path = tmp_path / "v.avi"
    truth = _frames(300)
    write_video(path, truth, codec, SIZE)
    starts = []

    def open_video_noting_start(*args, **kwargs):
        starts.append(kwargs.get("first", 0))
        return open_video(*args, **kwargs)

    monkeypatch.setattr(chunks, "open_video", open_video_noting_start)
    written, stored = _encoded_into(path, tmp_path / "o.h5", 290)
    assert written == 290 and starts == [0, 144 if codec == "FFV1" else 145]
    np.testing.assert_array_equal(stored, np.stack([f.T for f in truth[:290]]))


def test_halves_that_do_not_meet_are_reported_as_frames_missing(tmp_path, monkeypatch):
    """A second half starting one keyframe late would store wrong frames: encode_into says so."""
    path = tmp_path / "v.avi"
    write_video(path, _frames(300), "FFV1", SIZE)
    seek = video._seek
    monkeypatch.setattr(video, "_seek", lambda p, first: seek(p, first + 12))
    written, _ = _encoded_into(path, tmp_path / "o.h5", 300)
    assert written < 300


def test_frames_from_two_decoders_and_a_chunk_file_join_into_chunks_of_eight(tmp_path):
    """Rows 0-2 copied from a chunk file after rows 3-292 were decoded in two halves: every
    chunk of 8 frames is written once whole, wherever its frames came from, the last padded."""
    path, head = tmp_path / "v.avi", tmp_path / "head.avi"
    truth, first = _frames(300), _frames(3)[::-1]
    write_video(path, truth, "FFV1", SIZE)
    write_video(head, first, "GREY", SIZE)
    chunk_file = encode_video(head, tmp_path / "head.h5")
    with h5py.File(tmp_path / "o.h5", "w") as h5:
        data = h5.create_dataset("d", (293, *SIZE), np.uint8, chunks=(8, *SIZE), compression="gzip")
        store = ChunkWriter(data)
        written = encode_into(probe_video(path, False, True), store, 3, 290, Deflater(), 2)
        copy_chunks(chunk_file, store, 0, 3)
        assert (written, store.pending, data.id.get_num_chunks()) == (290, {}, 37)
        expected = np.stack([f.T for f in [*first, *truth[:290]]])
        np.testing.assert_array_equal(data[:], expected)
        last = zlib.decompress(data.id.read_direct_chunk((288, 0, 0))[1])
        assert last[5 * data[0].nbytes :] == bytes(3 * data[0].nbytes)  # 3 rows past the end
