"""Prediction through the adapter hooks, on exported a0 models resolved via the real TF Hub handles."""

from __future__ import annotations

import concurrent.futures
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from adapter import MovinetAdapter
from adapter.core.presets import kinetics_600_labels
from adapter.model.hub import HubModelUnavailable
from adapter.movinet_adapter import PredictionFailed
from adapter.runtime.tf_backend import StreamVideoClassifier
from adapter.video.clips import stream_windows
from adapter.video.inputs import local_video
from adapter.video.preprocessing import preprocess_frame
from tests.conftest import HANDLE, model_entity
from tests.videos import write_audio_only, write_empty, write_text_as_video, write_truncated, write_video

# Tiny inputs keep 3D convolutions on 2 CPU cores fast.
SMALL = {"model_id": "a0", "imgz": 48, "n_frames": 4, "batch_size": 2, "top_k": 3, "fps": 5}
VIDEO_FPS = 10  # fixtures are written at 10 fps, so resampling to 5 fps keeps every second frame


def make_adapter(mode: str, **overrides) -> MovinetAdapter:
    entity = model_entity({**SMALL, "model_mode": mode, **overrides}, name=f"movinet-a0-{mode}", model_id=f"id-{mode}")
    # As on the platform: the constructor runs load_from_model (artifacts, then load()).
    return MovinetAdapter(model_entity=entity)


@pytest.fixture(scope="module")
def base_adapter(hub_cache, module_platform):
    return make_adapter("base")


@pytest.fixture(scope="module")
def stream_adapter(hub_cache, module_platform):
    return make_adapter("stream")


def decode_every_frame_rgb(path: str, imgz: int) -> list[np.ndarray]:
    """The test's own decoding: every frame with cv2, then the shared preprocessing."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(preprocess_frame(image, imgz))
    return frames


def video_level(collection):
    return [a for a in collection.annotations if a.metadata["user"]["movinet"]["level"] == "video"]


def segment_level(collection):
    return [a for a in collection.annotations if a.metadata["user"]["movinet"]["level"] == "segment"]


def test_base_probabilities_equal_the_hub_model_called_directly(base_adapter, tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=16, fps=VIDEO_FPS, width=64, height=48)

    prediction, reader = base_adapter.classify_video(local_video(path))

    # 10 -> 5 fps keeps frames 0, 2, ..., 14: two clips of four.
    kept = decode_every_frame_rgb(path, 48)[::2]
    clips = np.stack([np.stack(kept[0:4]), np.stack(kept[4:8])])
    hub_model = hub.load(HANDLE.format(mode="base"))
    logits = hub_model({"image": tf.constant(clips)}, training=False).numpy()
    expected = tf.nn.softmax(logits, axis=-1).numpy().mean(axis=0)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=2e-6)
    assert reader.num_frames == 16


def test_stream_probabilities_equal_the_hub_signatures_fed_frame_by_frame(stream_adapter, tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=14, fps=VIDEO_FPS, width=64, height=48)

    prediction, _ = stream_adapter.classify_video(local_video(path))

    kept = decode_every_frame_rgb(path, 48)[::2]
    hub_model = hub.load(HANDLE.format(mode="stream"))
    states = hub_model.signatures["init_states"](input_shape=tf.constant([1, 1, 48, 48, 3]))
    for frame in kept:
        outputs = hub_model.signatures["call"](**states, image=tf.constant(frame[None, None]))
        logits = outputs.pop("logits")
        states = outputs
    expected = tf.nn.softmax(logits, axis=-1).numpy()[0]
    np.testing.assert_allclose(prediction.probabilities, expected, atol=2e-6)


def test_stream_windows_carry_states_like_single_frame_steps(stream_adapter):
    rng = np.random.default_rng(0)
    frames = [(i, rng.random((48, 48, 3), dtype=np.float32)) for i in range(10)]
    classifier = StreamVideoClassifier(stream_adapter.model)

    by_window = classifier.classify(stream_windows(frames, 4))
    by_frame = classifier.classify(stream_windows(frames, 1))

    np.testing.assert_allclose(by_window.probabilities, by_frame.probabilities, atol=2e-6)
    assert [(s.first_index, s.last_index) for s in by_window.segments] == [(0, 3), (4, 7), (8, 9)]


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_predict_gives_top_k_annotations_over_the_whole_item(
    mode, base_adapter, stream_adapter, module_platform, tmp_path
):
    adapter = base_adapter if mode == "base" else stream_adapter
    item = module_platform.add_item(write_video(tmp_path / "clip.mp4", frames=23, fps=VIDEO_FPS), name="clip.mp4")

    (collection,) = adapter.predict([adapter.prepare_item_func(item)])

    annotations = video_level(collection)
    labels = kinetics_600_labels()
    assert len(annotations) == 3
    confidences = [a.metadata["user"]["model"]["confidence"] for a in annotations]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)
    assert len({a.label for a in annotations}) == 3 and all(a.label in labels for a in annotations)
    for annotation in annotations:
        assert annotation.type == "class"
        assert (annotation.start_frame, annotation.end_frame) == (0, 22)
        assert annotation.metadata["user"]["model"]["name"] == f"movinet-a0-{mode}"
    assert segment_level(collection) == []  # temporal annotations are off by default


@pytest.mark.parametrize("mode", ["base", "stream"])
def test_temporal_annotations_tile_the_item_and_merge_equal_neighbours(mode, hub_cache, module_platform, tmp_path):
    adapter = make_adapter(mode, temporal_annotations=True)
    path = write_video(tmp_path / "long.mp4", frames=41, fps=VIDEO_FPS, pattern="noise")

    (collection,) = adapter.predict([local_video(path)])

    ranges = sorted((a.start_frame, a.end_frame, a.label) for a in segment_level(collection))
    assert ranges[0][0] == 0 and ranges[-1][1] == 40
    for (_, end, label), (start, _, next_label) in zip(ranges, ranges[1:]):
        assert start == end + 1  # no gap, no overlap
        assert label != next_label  # equal neighbours were merged
    # 41 frames at 10 fps -> 21 kept frames -> 6 clips or windows of 4; merging can only reduce that.
    assert 1 <= len(ranges) <= 6
    assert len(video_level(collection)) == 3


@pytest.mark.parametrize(
    "name, width, height, frames",
    [
        ("v.mp4", 64, 48, 12),
        ("v.avi", 64, 48, 12),
        ("v.webm", 64, 48, 12),
        ("v.mkv", 64, 48, 12),
        ("v.mov", 64, 48, 12),
        ("portrait.mp4", 36, 64, 9),
        ("tiny.mp4", 16, 16, 6),
        ("single.mp4", 64, 48, 1),
    ],
)
def test_containers_and_shapes_are_annotated_over_their_frames(name, width, height, frames, base_adapter, tmp_path):
    path = write_video(tmp_path / name, frames=frames, fps=VIDEO_FPS, width=width, height=height)

    (collection,) = base_adapter.predict([local_video(path)])

    assert base_adapter.failures == []
    annotations = video_level(collection)
    assert len(annotations) == 3
    assert {(a.start_frame, a.end_frame) for a in annotations} == {(0, frames - 1)}


def test_bad_items_are_reported_by_name_and_the_others_are_annotated(base_adapter, module_platform, tmp_path):
    good = write_video(tmp_path / "good.mp4", frames=12, fps=VIDEO_FPS)
    bad_files = {
        "empty.mp4": write_empty(tmp_path / "empty.mp4"),
        "notes.mp4": write_text_as_video(tmp_path / "notes.mp4"),
        "cut.mp4": write_truncated(good, tmp_path / "cut.mp4", keep_fraction=0.3),
        "voice.mp4": write_audio_only(tmp_path / "voice.mp4"),
    }
    items = [module_platform.add_item(good, name="good-1.mp4")]
    items += [module_platform.add_item(path, name=name) for name, path in bad_files.items()]
    items.append(module_platform.add_item(tmp_path / "good.mp4", name="photo.jpg", mimetype="image/jpeg"))
    items.append(
        module_platform.add_item(write_video(tmp_path / "good.webm", frames=8, fps=VIDEO_FPS), name="good-2.webm")
    )

    with pytest.raises(PredictionFailed) as raised:
        base_adapter.predict_items(items)

    message = str(raised.value)
    failed = {name for name, _ in raised.value.failures}
    bad_names = [*bad_files, "photo.jpg"]
    assert len(failed) == len(bad_names)
    for name in bad_names:
        assert name in message
    assert "not a video" in message  # the image item
    assert "empty" in message
    assert "no video stream" in message
    by_name = {item.name: item.id for item in items}
    for name in ("good-1.mp4", "good-2.webm"):
        uploaded = module_platform.uploaded[by_name[name]]
        assert len([a for a in uploaded if a.metadata["user"]["movinet"]["level"] == "video"]) == 3
    for name in bad_names:
        assert module_platform.uploaded.get(by_name[name], []) == []


def test_prepare_item_func_downloads_each_item_to_its_own_folder_from_16_threads(
    base_adapter, module_platform, tmp_path
):
    sources = []
    for i in range(16):
        source = tmp_path / f"source-{i}.mp4"
        source.write_bytes(f"video {i}".encode() * 100)
        sources.append(source)
    # Every item has the same file name: only separate folders keep them apart.
    items = [module_platform.add_item(source, name="same-name.mp4") for source in sources]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        prepared = list(pool.map(base_adapter.prepare_item_func, items))

    assert len({video.download_dir for video in prepared}) == 16
    for video, source in zip(prepared, sources):
        assert open(video.path, "rb").read() == source.read_bytes()
        video.cleanup()
        assert not os.path.exists(video.path)


def test_non_video_item_is_refused_by_prepare_item_func(base_adapter, module_platform, tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    item = module_platform.add_item(tmp_path / "a.txt", name="a.txt", mimetype="text/plain")

    prepared = base_adapter.prepare_item_func(item)

    assert prepared.path is None
    assert "'a.txt'" in prepared.error and "not a video" in prepared.error


def test_unreachable_hub_is_an_error_that_names_the_handle_never_random_weights(platform, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty-cache"))
    adapter = MovinetAdapter()
    adapter.model_entity = model_entity({**SMALL, "hub_handle": "http://127.0.0.1:9/movinet/a0/base"})

    with pytest.raises(HubModelUnavailable) as raised:
        adapter.load(None)

    message = str(raised.value)
    assert "http://127.0.0.1:9/movinet/a0/base" in message
    for way_out in ("TFHUB_CACHE_DIR", "hub_handle", "export-hub"):
        assert way_out in message
    assert adapter.model is None


def test_hub_handle_may_name_a_local_saved_model_directory(exported_models, platform, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty-cache"))
    # runtime pinned: another handle is another conversion key.
    adapter = MovinetAdapter(
        model_entity=model_entity({**SMALL, "hub_handle": str(exported_models["base"]), "runtime": "tensorflow"})
    )

    assert adapter.loaded.source == str(exported_models["base"])
    assert len(adapter.loaded.labels) == 600
