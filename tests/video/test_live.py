"""Live sources without a model: MPEG-TS through pipes and a loopback socket, resampling, damage, stalls."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

import numpy as np
import pytest

from adapter.video.live import END_OF_STREAM, STALLED, LiveSource
from adapter.video.reader import VideoError, VideoReader
from tests.videos import mark_ts_packets_corrupt, mpegts_bytes, write_video

SOURCE_FPS = 10
FRAMES = 40  # 4 s at 10 fps


@pytest.fixture(scope="module")
def stream() -> bytes:
    return mpegts_bytes(frames=FRAMES, fps=SOURCE_FPS)


@contextlib.contextmanager
def piped(data: bytes, *, hold_open: bool = False):
    """An FFmpeg "pipe:N" URL whose other end a thread writes `data` into.

    hold_open: after the data, keep the writing end open (a live source that went silent)
    until the block ends.
    """
    read_fd, write_fd = os.pipe()
    done = threading.Event()

    def write():
        with open(write_fd, "wb") as pipe:
            try:
                pipe.write(data)
                pipe.flush()
                if hold_open:
                    done.wait()
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield f"pipe:{read_fd}"
    finally:
        done.set()
        writer.join(timeout=10)
        os.close(read_fd)


@contextlib.contextmanager
def served(data: bytes, *, hold_open: bool = False):
    """A tcp:// URL on 127.0.0.1 whose server sends `data` to the first client (then closes, or holds)."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        connection, _ = server.accept()
        with connection:
            try:
                connection.sendall(data)
                if hold_open:
                    done.wait()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=10)
        server.close()


def test_frames_are_resampled_by_their_timestamps(stream):
    with piped(stream) as url:
        source = LiveSource(url, fps=5)
        frames = list(source)

    # 10 fps -> 5 fps: every second frame, each standing for its own 0.2 s slot.
    assert [frame.slot for frame in frames] == list(range(FRAMES // 2))
    assert [round(frame.time, 6) for frame in frames] == [round(0.2 * k, 6) for k in range(FRAMES // 2)]
    assert frames[0].image.shape == (48, 64, 3)
    assert source.end_reason == END_OF_STREAM
    assert source.frames_decoded == FRAMES


def test_a_corrupt_packet_is_reported_by_source_and_the_stream_goes_on(stream, caplog):
    damaged = mark_ts_packets_corrupt(stream, start_fraction=0.5)

    with piped(damaged) as url, caplog.at_level(logging.WARNING, logger="adapter.video.live"):
        source = LiveSource(url, fps=None)
        frames = list(source)

    assert source.corrupt_packets >= 1
    reports = [record.getMessage() for record in caplog.records if "corrupt" in record.getMessage()]
    assert reports and all(url in message for message in reports)
    # The frames after the damage still came, to the stream's end.
    assert FRAMES - 3 <= len(frames) < FRAMES
    assert frames[-1].time == pytest.approx((FRAMES - 1) / SOURCE_FPS)
    assert source.end_reason == END_OF_STREAM


def test_a_silent_pipe_ends_the_stream_as_stalled_after_the_timeout(stream):
    half = stream[: len(stream) // 2 // 188 * 188]

    with piped(half, hold_open=True) as url:
        source = LiveSource(url, fps=5, stall_timeout=1.0)
        frames = list(source)

    assert source.end_reason == STALLED
    assert "1 s" in source.end_detail
    assert 0 < len(frames) and frames[-1].time < FRAMES / SOURCE_FPS / 2


def test_a_silent_socket_ends_the_stream_as_stalled(stream):
    half = stream[: len(stream) // 2 // 188 * 188]

    with served(half, hold_open=True) as url:
        source = LiveSource(url, fps=5, stall_timeout=1.0)
        frames = list(source)

    assert source.end_reason == STALLED
    assert 0 < len(frames) and frames[-1].time < FRAMES / SOURCE_FPS / 2


def test_a_source_that_cannot_be_opened_is_a_video_error_naming_it():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now
    url = f"tcp://127.0.0.1:{port}"

    with pytest.raises(VideoError, match="cannot be opened") as raised:
        list(LiveSource(url, fps=5, stall_timeout=2.0))
    assert url in str(raised.value)


def test_a_video_file_gives_the_frames_the_file_reader_keeps(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=23, fps=SOURCE_FPS)

    live = [frame.image for frame in LiveSource(str(path), fps=5)]
    read = [frame.image for frame in VideoReader(str(path), fps=5)]

    # Timestamps (live) and frame indices (files) pick the same frames of a constant-rate video.
    assert len(live) == len(read) == 12
    for live_image, read_image in zip(live, read):
        np.testing.assert_array_equal(live_image, read_image)
