"""The "tflite" runtime for base models: the converted clip model run by LiteRT gives the
TensorFlow path's results (per-clip top-1, probabilities, embedding), and its conversion is
keyed by n_frames too.

One real conversion (a0 base, imgz 48, 4 frames) is shared by the session and kept in the
test model cache beside the exported model, so later runs reuse it.
"""

from __future__ import annotations

import numpy as np
import pytest

from adapter.core.config import MovinetConfig
from adapter.model.loading import load_model
from adapter.runtime import backend, conversion_cache, litert_backend
from adapter.runtime.tf_backend import BaseVideoClassifier
from adapter.video.clips import base_clips
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoReader
from tests.videos import write_video

IMGZ, FRAMES = 48, 4
CONFIG = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "base", "imgz": IMGZ, "fps": 5, "n_frames": FRAMES})
# Same float32 network run by other kernels (and per-frame 2D pooling for the 3D one).
ATOL = 1e-4


@pytest.fixture(scope="module")
def loaded(hub_cache):
    return load_model(CONFIG, None)


@pytest.fixture(scope="module")
def tflite_classifier(loaded):
    # Converts on the first run only; later runs find the entry beside the cached export.
    return backend.make_classifier(CONFIG.replace(runtime="tflite"), loaded)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("base-runtime") / "v.mp4", frames=46, fps=10, seed=5)
    frames = [(frame.index, preprocess_frame(frame.image, IMGZ)) for frame in VideoReader(str(path), fps=5)]
    return list(base_clips(frames, FRAMES))


def test_runtime_tflite_for_base_is_accepted_and_gives_the_tflite_classifier(tflite_classifier):
    assert MovinetConfig.from_dict({"model_mode": "base", "runtime": "tflite"}).resolved_runtime == "tflite"
    assert isinstance(tflite_classifier, litert_backend.TFLiteBaseClassifier)
    assert tflite_classifier.clip_shape == (FRAMES, IMGZ, IMGZ, 3)


def test_tflite_base_classify_equals_the_tensorflow_path_clip_by_clip(tflite_classifier, loaded, clips):
    tensorflow = BaseVideoClassifier(loaded.model, batch_size=2)
    expected = tensorflow.classify(clips)

    got = tflite_classifier.classify(clips)

    assert len(got.segments) == len(expected.segments) == 6  # 23 frames: five clips of 4, the tail completed
    for segment, want in zip(got.segments, expected.segments):
        assert (segment.first_index, segment.last_index) == (want.first_index, want.last_index)
        assert segment.class_index == want.class_index
        np.testing.assert_allclose(segment.probabilities, want.probabilities, atol=ATOL)
        assert segment.confidence == pytest.approx(want.confidence, abs=ATOL)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=ATOL)


def test_tflite_base_embedding_equals_the_tensorflow_path(tflite_classifier, loaded, clips):
    expected = BaseVideoClassifier(loaded.model, batch_size=2).embed(clips)

    got = tflite_classifier.embed(clips)

    assert got.shape == expected.shape == (480,)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_a_clip_of_another_length_is_refused_naming_both_shapes(tflite_classifier, clips):
    short = clips[0].__class__(clips[0].frames[:2], clips[0].first_index, clips[0].last_index)

    with pytest.raises(ValueError, match=r"\(4, 48, 48, 3\).*\(2, 48, 48, 3\)"):
        tflite_classifier.classify([short])


def test_the_base_conversion_key_changes_with_n_frames_and_the_stream_key_has_none(loaded):
    key = conversion_cache.conversion_key(loaded, CONFIG)

    assert key["n_frames"] == FRAMES
    assert conversion_cache.conversion_key(loaded, CONFIG.replace(n_frames=8)) != key
    assert conversion_cache.conversion_key(loaded, CONFIG.replace(n_frames=FRAMES)) == key
    stream = CONFIG.replace(model_mode="stream")
    stream_key = conversion_cache.conversion_key(loaded, stream)
    assert stream_key == conversion_cache.conversion_key(loaded, stream.replace(n_frames=8))


def test_an_unset_runtime_runs_base_on_tflite_here_reusing_the_conversion(tflite_classifier, loaded, clips):
    def never(loaded, config):
        raise AssertionError("the cached conversion should have been reused")

    default = backend.make_classifier(CONFIG, loaded, converter=never)  # this machine has no GPU

    assert isinstance(default, litert_backend.TFLiteBaseClassifier)
    np.testing.assert_array_equal(default.embed(clips), tflite_classifier.embed(clips))


def test_load_makes_no_classifier_and_the_first_prediction_makes_one(hub_cache, platform, monkeypatch, clips):
    from adapter import MovinetAdapter, movinet_adapter
    from tests.conftest import model_entity

    made = []

    def spy(config, loaded):
        made.append(config.model_mode)
        return backend.make_classifier(config, loaded)

    monkeypatch.setattr(movinet_adapter, "make_classifier", spy)
    adapter = MovinetAdapter(model_entity=model_entity(CONFIG.to_dict(), name="movinet-a0-base"))  # load()s

    assert made == []  # training would start here: nothing converted, no classifier
    assert isinstance(adapter.classifier, litert_backend.TFLiteBaseClassifier) and made == ["base"]
    assert adapter.classifier is adapter.classifier and made == ["base"]


def test_a_failed_conversion_fails_each_video_naming_the_runtime_and_is_not_retried(
    hub_cache, platform, monkeypatch, tmp_path
):
    from adapter import MovinetAdapter, movinet_adapter
    from adapter.video.inputs import local_video
    from tests.conftest import model_entity

    attempts = []

    def failing(config, loaded):
        attempts.append(config.model_mode)
        raise RuntimeError("converter ran out of memory")

    monkeypatch.setattr(movinet_adapter, "make_classifier", failing)
    adapter = MovinetAdapter(model_entity=model_entity(CONFIG.to_dict(), name="movinet-a0-base"))
    videos = [write_video(tmp_path / f"{name}.mp4", frames=10, fps=10, seed=seed) for seed, name in enumerate("ab")]

    adapter.embed([local_video(str(path)) for path in videos])

    assert [name for name, _ in adapter.failures] == [str(path) for path in videos]
    for _, reason in adapter.failures:
        assert "'tflite' runtime" in reason and "out of memory" in reason and "runtime to 'tensorflow'" in reason
    assert attempts == ["base"]  # one attempt, not one per video
