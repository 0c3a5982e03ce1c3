"""Tests for adapter/video/reader.py: decoding, resampling, streaming and bad input."""

from __future__ import annotations

import dataclasses
import fractions
import functools
import logging
import math

import numpy as np
import pytest

from adapter.video import decoders
from adapter.video import reader as video
from adapter.video.h264 import length_prefix_size, slice_reference_flags
from adapter.video.reader import Frame, VideoError, VideoReader, is_video_mimetype
from tests.videos import (
    locate_square,
    square_position,
    write_audio_only,
    write_empty,
    write_no_decodable_frames,
    write_text_as_video,
    write_truncated,
    write_video,
)

CONTAINERS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
# The default decoder and the fallback; both must behave the same.
DECODERS = ("pyav", "cv2")


def expected_kept(num_frames: int, source_fps, target_fps) -> list[int]:
    """Source indices the rule keeps, computed target time by target time.

    For each target time k/target_fps, the first source frame at or after it is
    ceil(k * source_fps / target_fps); collect those inside the video.
    """
    src, dst = fractions.Fraction(source_fps), fractions.Fraction(target_fps)
    if dst >= src:
        return list(range(num_frames))
    kept, k = [], 0
    while (i := math.ceil(k * src / dst)) < num_frames:
        kept.append(i)
        k += 1
    return kept


def read_all(path, **kwargs) -> tuple[VideoReader, list[Frame]]:
    reader = VideoReader(str(path), **kwargs)
    return reader, list(reader)


def _write_bytes(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def square_x(image: np.ndarray) -> int:
    return locate_square(image)[0]


# --- containers, shapes, channel order -------------------------------------------------


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_every_container_decodes_all_frames_in_order(tmp_path, ext, decoder):
    path = write_video(tmp_path / f"clip{ext}", frames=12, fps=10.0, width=64, height=48, direction=(2, 0), seed=3)
    reader, frames = read_all(path, _decoder=decoder)

    assert reader.source_fps == pytest.approx(10.0)
    assert [f.index for f in frames] == list(range(12))
    assert reader.num_frames == 12
    for f in frames:
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        # The image really is source frame f.index: the square is where that frame drew it.
        assert locate_square(f.image) == square_position(f.index, width=64, height=48, direction=(2, 0), seed=3)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_frames_are_bgr(tmp_path, ext, decoder):
    # Bands of pure blue, green, red (BGR order) from left to right.
    path = write_video(tmp_path / f"bars{ext}", frames=2, width=96, height=48, pattern="color_bars")
    _, frames = read_all(path, _decoder=decoder)
    image = frames[0].image
    for band, channel in enumerate((0, 1, 2)):
        pixel = image[20:28, band * 32 + 12 : band * 32 + 20].reshape(-1, 3).mean(axis=0)
        assert pixel[channel] > 200, (band, pixel)
        assert np.delete(pixel, channel).max() < 50, (band, pixel)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_h264_with_reordered_frames_comes_out_in_display_order(tmp_path, ext):
    # libx264 uses B-frames, so decode order differs from display order.
    path = write_video(tmp_path / f"h264{ext}", frames=30, fps=30.0, codec="libx264", direction=(3, 1))
    reader, frames = read_all(path, fps=10)
    assert [f.index for f in frames] == expected_kept(30, 30, 10) == list(range(0, 30, 3))
    for f in frames:
        assert locate_square(f.image) == square_position(f.index, width=64, height=48, direction=(3, 1))
    assert reader.num_frames == 30


def _full_decode(path, fps):
    """VideoReader with every picture decoded: the reference for the left-out pictures."""
    full = functools.partial(decoders.PyAVDecoder, skip_unreferenced=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(video.DECODERS, "pyav-full", full)
        return read_all(path, fps=fps, _decoder="pyav-full")


def _left_out(path, wanted) -> int:
    return sum(1 for _, lazy in decoders.PyAVDecoder(str(path)).frames(wanted) if lazy is None)


@pytest.mark.parametrize(
    "ext,options",
    [(".mp4", None), (".mkv", None), (".ts", None), (".mp4", {"bf": "0"})],
    ids=["mp4", "mkv", "mpeg-ts", "mp4-no-b-frames"],
)
def test_unreferenced_pictures_left_out_change_no_kept_frame(tmp_path, ext, options):
    # 90 frames at 30 fps read at 5 fps: 15 kept. libx264's B-frames are pictures no
    # other picture refers to; the default decoder skips those it does not need.
    path = write_video(
        tmp_path / f"h264{ext}", frames=90, fps=30.0, codec="libx264", direction=(2, 1), codec_options=options
    )
    full_reader, full = _full_decode(path, fps=5)
    reader, frames = read_all(path, fps=5)

    assert [f.index for f in frames] == [f.index for f in full] == expected_kept(90, 30, 5)
    for a, b in zip(frames, full):
        assert np.array_equal(a.image, b.image)
        assert locate_square(a.image) == square_position(a.index, width=64, height=48, direction=(2, 1))
    assert reader.num_frames == full_reader.num_frames == 90
    left_out = _left_out(path, lambda index: index % 6 == 0)
    if options is None:
        assert left_out > 0
    else:
        assert left_out == 0  # without B-frames every picture is a reference


def test_left_out_pictures_are_the_ones_ffmpeg_calls_non_reference(tmp_path):
    import av

    path = write_video(tmp_path / "h264.mp4", frames=60, fps=30.0, codec="libx264", pattern="noise")
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"  # FFmpeg's own reading of nal_ref_idc
        references = sum(1 for _ in container.decode(stream))
    # Wanting nothing leaves out every non-reference picture, and only those.
    assert 0 < references < 60
    assert _left_out(path, lambda index: False) == 60 - references


@pytest.mark.parametrize("ext", [".mp4", ".ts"])
def test_slices_of_a_multi_slice_stream_are_all_found(tmp_path, ext):
    import av

    path = write_video(tmp_path / f"sliced{ext}", frames=8, codec="libx264", codec_options={"slices": "3"})
    with av.open(path) as container:
        stream = container.streams.video[0]
        prefix = length_prefix_size(stream.codec_context.extradata)
        assert (prefix is None) == (ext == ".ts")
        flags = [slice_reference_flags(bytes(p), prefix) for p in container.demux(stream) if p.size]
    assert len(flags) == 8 and all(len(f) == 3 for f in flags)
    assert all(flags[0])  # the first picture is an IDR picture: always a reference
    assert decoders.threading_for(len(flags[0]), cores=2) == "SLICE"
    assert decoders.threading_for(len(flags[0]), cores=8) == "AUTO"


def test_decoders_agree_pixel_for_pixel(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=6, pattern="noise")
    _, a = read_all(path, _decoder="pyav")
    _, b = read_all(path, _decoder="cv2")
    assert len(a) == len(b) == 6
    for fa, fb in zip(a, b):
        assert np.abs(fa.image.astype(int) - fb.image.astype(int)).max() <= 2


@pytest.mark.parametrize("decoder", DECODERS)
def test_display_rotation_is_applied(tmp_path, decoder):
    # Coded 64x48 (landscape) with a 90 degree display rotation, like a phone video
    # shot upright: it must come out portrait, turned as players show it.
    path = write_video(tmp_path / "phone.mp4", frames=3, width=64, height=48, rotation=90)
    _, frames = read_all(path, _decoder=decoder)
    x, y = square_position(0, width=64, height=48)
    # A 90 degree counter-clockwise turn maps coded (x, y) to (y, 63 - x); the
    # square's top-left corner becomes its bottom-left one.
    side = 12
    assert frames[0].image.shape == (64, 48, 3)
    assert locate_square(frames[0].image) == (y, (64 - x - side) % 64)


@pytest.mark.parametrize("ext", [".mp4", ".webm", ".avi"])
@pytest.mark.parametrize(
    "frames,width,height",
    [(1, 64, 48), (5, 48, 64), (5, 16, 16)],
    ids=["single-frame", "portrait", "tiny"],
)
def test_single_frame_portrait_and_tiny_videos(tmp_path, ext, frames, width, height):
    path = write_video(tmp_path / f"v{ext}", frames=frames, width=width, height=height)
    reader, out = read_all(path, fps=5)
    assert [f.index for f in out] == expected_kept(frames, 10, 5)
    assert all(f.image.shape == (height, width, 3) for f in out)
    assert reader.num_frames == frames


# --- resampling ---------------------------------------------------------------------


def test_rule_by_hand_10_to_4_fps(tmp_path):
    # Target times 0, .25, .5, .75, 1.0 s; frames are at 0, .1, .2, ... s, so the
    # first frames at or after them are 0, 3 (.3), 5 (.5), 8 (.8) and 10 (1.0).
    path = write_video(tmp_path / "v.avi", frames=11, fps=10.0)
    _, frames = read_all(path, fps=4)
    assert [f.index for f in frames] == [0, 3, 5, 8, 10]


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "source_fps,target_fps,num_frames",
    [(30.0, 5, 61), (10.0, 4, 23), (25.0, 30, 10), (25.0, 25, 10), (30.0, 12, 40), (24.0, 7.5, 50)],
)
def test_resampling_keeps_first_frame_at_or_after_each_target_time(
    tmp_path, decoder, source_fps, target_fps, num_frames
):
    path = write_video(tmp_path / "v.avi", frames=num_frames, fps=source_fps, direction=(1, 1))
    reader, frames = read_all(path, fps=target_fps, _decoder=decoder)

    assert [f.index for f in frames] == expected_kept(num_frames, source_fps, target_fps)
    for f in frames:
        assert locate_square(f.image) == square_position(f.index, width=64, height=48, direction=(1, 1))
    assert reader.num_frames == num_frames


def test_resampling_ntsc_rate_uses_exact_fraction(tmp_path):
    ntsc = fractions.Fraction(30000, 1001)
    path = write_video(tmp_path / "ntsc.mkv", frames=90, fps=float(ntsc), codec="libx264")
    reader, frames = read_all(path, fps=5)
    assert reader.source_fps == pytest.approx(29.97, abs=1e-3)
    assert [f.index for f in frames] == expected_kept(90, ntsc, 5)


def test_rate_at_or_above_source_keeps_every_frame_without_duplicates(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=10, fps=25.0)
    for fps in (25, 30, 1000, None):
        reader, frames = read_all(path, fps=fps)
        assert [f.index for f in frames] == list(range(10)), fps


def test_unknown_source_rate_keeps_every_frame_and_warns(tmp_path, monkeypatch, caplog):
    path = write_video(tmp_path / "v.mp4", frames=8, fps=30.0)
    real_probe = video._probe
    monkeypatch.setattr(video, "_probe", lambda *a: dataclasses.replace(real_probe(*a), fps=None))
    with caplog.at_level(logging.WARNING, logger="adapter.video.reader"):
        reader, frames = read_all(path, fps=5, name="no-rate.mp4")
    assert [f.index for f in frames] == list(range(8))
    assert reader.source_fps == 0.0
    assert any("no-rate.mp4" in r.getMessage() and "frame rate" in r.getMessage() for r in caplog.records)


def test_invalid_target_fps_is_rejected(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=2)
    for fps in (0, -5, float("nan"), "5"):
        with pytest.raises(ValueError):
            VideoReader(path, fps=fps)


# --- num_frames and streaming -----------------------------------------------------------


def test_num_frames_counts_frames_dropped_by_resampling(tmp_path):
    # 16 frames at 30 fps to 5 fps keeps 0, 6, 12: the last frames are not kept but count.
    path = write_video(tmp_path / "v.mp4", frames=16, fps=30.0)
    reader = VideoReader(path, fps=5)
    assert reader.num_frames is None
    frames = list(reader)
    assert [f.index for f in frames] == [0, 6, 12]
    assert reader.num_frames == 16
    # A second iteration decodes afresh and ends with the same count.
    assert [f.index for f in reader] == [0, 6, 12] and reader.num_frames == 16


@pytest.mark.parametrize("decoder", DECODERS)
def test_reader_is_lazy(tmp_path, decoder):
    path = write_video(tmp_path / "long.mp4", frames=300, fps=30.0)
    reader = VideoReader(path, fps=5, _decoder=decoder)
    assert reader.num_frames is None  # construction decodes nothing
    frames = iter(reader)
    first = next(frames)
    assert first.index == 0
    # Frame threads may have a few frames in flight, nowhere near the 300.
    assert reader.num_frames <= 8
    second = next(frames)
    assert second.index == 6 and reader.num_frames <= 16
    frames.close()


def test_frames_dropped_by_resampling_are_never_converted(tmp_path, monkeypatch):
    conversions = []
    real_converter = decoders.pyav_converter

    def counting_converter(frame, *args):
        convert = real_converter(frame, *args)

        def counted():
            conversions.append(frame)
            return convert()

        return counted

    monkeypatch.setattr(decoders, "pyav_converter", counting_converter)
    path = write_video(tmp_path / "v.mp4", frames=60, fps=30.0)
    reader, frames = read_all(path, fps=5, _decoder="pyav")
    assert reader.num_frames == 60
    assert len(frames) == len(conversions) == 10


def test_cv2_decoder_retrieves_only_kept_frames(tmp_path, monkeypatch):
    import cv2

    retrieved = []
    real_capture = cv2.VideoCapture

    class CountingCapture:
        def __init__(self, *args):
            self._capture = real_capture(*args)

        def retrieve(self, *args):
            retrieved.append(1)
            return self._capture.retrieve(*args)

        def __getattr__(self, attr):
            return getattr(self._capture, attr)

    monkeypatch.setattr(cv2, "VideoCapture", CountingCapture)
    path = write_video(tmp_path / "v.avi", frames=60, fps=30.0)
    reader, frames = read_all(path, fps=5, _decoder="cv2")
    assert reader.num_frames == 60
    assert len(frames) == len(retrieved) == 10


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "make,phrase",
    [
        (lambda d: str(d / "missing.mp4"), "does not exist"),
        (lambda d: str(d), "is not a file"),
        (lambda d: write_empty(d / "empty.mp4"), "is empty"),
        (lambda d: write_text_as_video(d / "notes.mp4"), "is not a video file (it contains text)"),
        (
            lambda d: write_truncated(write_video(d / "full.mp4", frames=40), d / "cut.mp4", 0.3),
            "truncated or corrupt MP4/QuickTime file",
        ),
        (lambda d: _write_bytes(d / "random.webm", np.random.default_rng(0).bytes(4096)), "not a video file"),
        (lambda d: write_audio_only(d / "song.m4a"), "has no video stream (it is audio-only)"),
        (
            lambda d: write_audio_only(d / "album.m4a", cover_art=True),
            "has no video stream (it is audio-only with cover",
        ),
        (lambda d: write_no_decodable_frames(d / "garbage.mp4"), "no frame could be decoded"),
    ],
    ids=["missing", "directory", "empty", "text", "truncated-mp4", "binary", "audio-only", "cover-art", "undecodable"],
)
def test_bad_input_raises_video_error_naming_video_and_reason(tmp_path, decoder, make, phrase):
    path = make(tmp_path)
    # With the default name the message names the path, with a given name that name;
    # either way the error comes before any frame is yielded.
    for name, shown in ((None, path), ("item-42.mp4", "item-42.mp4")):
        yielded = []
        with pytest.raises(VideoError) as info:
            for frame in VideoReader(path, fps=5, name=name, _decoder=decoder):
                yielded.append(frame)
        assert shown in str(info.value)
        assert phrase in str(info.value)
        assert yielded == []
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("ext", [".avi", ".mkv"])
def test_video_that_breaks_midway_keeps_frames_read_and_warns(tmp_path, caplog, decoder, ext):
    full = write_video(tmp_path / f"full{ext}", frames=40, fps=10.0)
    cut = write_truncated(full, tmp_path / f"cut{ext}", keep_fraction=0.4)
    with caplog.at_level(logging.WARNING, logger="adapter.video.reader"):
        reader, frames = read_all(cut, name="cut-clip", _decoder=decoder)

    assert 0 < len(frames) < 40
    assert [f.index for f in frames] == list(range(reader.num_frames))
    for f in frames:
        assert square_x(f.image) == square_position(f.index, width=64, height=48)[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "cut-clip" in warnings[0] and f"{reader.num_frames} frames" in warnings[0]


def test_complete_videos_log_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="adapter.video.reader"):
        for ext in CONTAINERS:
            read_all(write_video(tmp_path / f"ok{ext}", frames=20, fps=30.0), fps=5)
    assert caplog.records == []


# --- fixtures and helpers ---------------------------------------------------------------


def test_directions_differ_only_in_motion(tmp_path):
    right = list(VideoReader(write_video(tmp_path / "r.avi", frames=4, direction=(1, 0), seed=7)))
    down = list(VideoReader(write_video(tmp_path / "d.avi", frames=4, direction=(0, 1), seed=7)))
    assert np.array_equal(right[0].image, down[0].image)
    (x0, y0), (x1, y1) = locate_square(right[3].image), locate_square(down[3].image)
    assert (x0 - x1, y1 - y0) == (3, 3)


def test_noise_pattern_depends_on_seed(tmp_path):
    a = list(VideoReader(write_video(tmp_path / "a.avi", frames=2, pattern="noise", seed=1)))
    b = list(VideoReader(write_video(tmp_path / "b.avi", frames=2, pattern="noise", seed=1)))
    c = list(VideoReader(write_video(tmp_path / "c.avi", frames=2, pattern="noise", seed=2)))
    assert np.array_equal(a[1].image, b[1].image)
    assert not np.array_equal(a[1].image, c[1].image)
    assert not np.array_equal(a[0].image, a[1].image)


@pytest.mark.parametrize(
    "mimetype,expected",
    [
        ("video/mp4", True),
        ("Video/WebM", True),
        ("video/x-matroska", True),
        ("image/png", False),
        ("audio/mp4", False),
        ("application/octet-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_is_video_mimetype(mimetype, expected):
    assert is_video_mimetype(mimetype) is expected


# --- variable frame rate: resampling by presentation time ----------------------------------

# 2 s at 30 fps, then 10 s at 1 fps: 60 + 10 frames.
BURST_THEN_SLOW = [fractions.Fraction(i, 30) for i in range(60)] + [fractions.Fraction(2 + k) for k in range(10)]


def expected_kept_by_time(times, target_fps) -> list[int]:
    """Indices of the first frame shown at or after each target time k/target_fps (times in display order)."""
    target = fractions.Fraction(target_fps)
    kept, k = [], 0
    for index, seconds in enumerate(times):
        if seconds >= k / target:
            kept.append(index)
            k = math.floor(seconds * target) + 1
    return kept


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_a_variable_rate_video_keeps_one_frame_per_target_period_of_its_own_time(tmp_path, caplog, ext):
    from tests.videos import write_variable_rate

    path = write_variable_rate(tmp_path / f"vfr{ext}", BURST_THEN_SLOW)
    with caplog.at_level(logging.WARNING, logger="adapter.video.reader"):
        reader, frames = read_all(path, fps=5, name="vfr-clip")

    indices = [f.index for f in frames]
    assert indices == expected_kept_by_time(BURST_THEN_SLOW, 5)
    # 10 frames from the first 2 s (one per 0.2 s), and every one of the ten 1 s frames after it.
    assert sum(i < 60 for i in indices) == 10 and [i for i in indices if i >= 60] == list(range(60, 70))
    assert [f.time for f in frames] == pytest.approx([float(BURST_THEN_SLOW[i]) for i in indices], abs=1e-3)
    for f in frames:
        assert square_x(f.image) == square_position(f.index, width=64, height=48, direction=(3, 0))[0]
    assert reader.num_frames == 70
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]  # a complete file, not a short one


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_predict_and_watch_keep_the_same_frames_of_a_variable_rate_video(tmp_path, ext):
    from adapter.video.live import LiveSource
    from tests.videos import write_variable_rate

    path = write_variable_rate(tmp_path / f"vfr{ext}", BURST_THEN_SLOW)

    read = list(VideoReader(path, fps=5))
    live = list(LiveSource(path, fps=5))

    assert [f.time for f in read] == pytest.approx([f.time for f in live], abs=1e-9)
    assert len(read) == len(expected_kept_by_time(BURST_THEN_SLOW, 5))
    for read_frame, live_frame in zip(read, live):
        np.testing.assert_array_equal(read_frame.image, live_frame.image)
        # watch's slot is the target period the frame stands for.
        assert live_frame.slot == math.floor(fractions.Fraction(live_frame.time).limit_denominator(1000) * 5)


def test_left_out_pictures_of_a_variable_rate_video_change_no_kept_frame(tmp_path):
    from tests.videos import write_variable_rate

    path = write_variable_rate(tmp_path / "vfr.mp4", BURST_THEN_SLOW, direction=(2, 1))
    full_reader, full = _full_decode(path, fps=5)
    reader, frames = read_all(path, fps=5)

    assert [f.index for f in frames] == [f.index for f in full] == expected_kept_by_time(BURST_THEN_SLOW, 5)
    for a, b in zip(frames, full):
        assert np.array_equal(a.image, b.image)
    assert _left_out(path, lambda index: False) > 0  # the B-frames of the burst were skipped, not decoded


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_rounded_timestamps_of_a_constant_rate_video_keep_the_frames_its_frame_numbers_say(tmp_path, ext):
    # 29.97 fps in Matroska's milliseconds: frame 6 is at 200.2 ms, stored as 200 ms, on the far side of
    # the 0.2 s target time; snapped back to its frame time it is the first frame at or after 0.2 s.
    from tests.videos import write_variable_rate

    ntsc = fractions.Fraction(30000, 1001)
    path = write_variable_rate(tmp_path / f"ntsc{ext}", [i / ntsc for i in range(120)], nominal_fps=ntsc)

    for target in (5, 7.5, 12):
        _, frames = read_all(path, fps=target)
        assert [f.index for f in frames] == expected_kept(120, ntsc, target), target
