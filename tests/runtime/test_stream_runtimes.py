"""The "tflite" runtime: the converted stream model run by LiteRT gives the TensorFlow path's
results, and its conversion is cached by what it was made from and reused.

One real conversion (a0 stream at imgz 48) is shared by the module and kept in the test model
cache beside the exported model, so later runs reuse it; the cache's bookkeeping is tested
with stand-in flatbuffers.
"""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest

from adapter.core.config import ConfigError, MovinetConfig
from adapter.model.loading import FineTunedInfo, LoadedModel, load_model
from adapter.runtime import backend, conversion, conversion_cache
from adapter.runtime.results import Scoring
from adapter.runtime.tf_backend import StreamVideoClassifier
from adapter.video.clips import stream_windows
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoReader
from tests.videos import write_video

IMGZ = 48  # the stream tests' size: they share this conversion
CONFIG = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "stream", "imgz": IMGZ, "fps": 5, "n_frames": 4})


class Spy:
    """A converter that records its calls and delegates to the real one (or fails, when told)."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.fail = fail

    def __call__(self, loaded, config):
        self.calls += 1
        if self.fail:
            raise AssertionError("the cached conversion should have been reused")
        return conversion.convert_stream(loaded, config)


@pytest.fixture(scope="module")
def loaded(hub_cache) -> LoadedModel:
    return load_model(CONFIG, None)


@pytest.fixture(scope="module")
def tflite_classifier(loaded):
    # Converts on the first run only; later runs find the entry in the test model cache.
    return backend.make_classifier(CONFIG.replace(runtime="tflite"), loaded, converter=Spy())


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("runtime") / "v.mp4", frames=46, fps=10, seed=3)
    return [(frame.index, preprocess_frame(frame.image, IMGZ)) for frame in VideoReader(str(path), fps=5)]


def test_tflite_segments_equal_the_tensorflow_path_window_by_window(tflite_classifier, loaded, frames):
    tensorflow = StreamVideoClassifier(loaded.model)
    expected = list(tensorflow.segments(stream_windows(frames, 4)))

    got = list(tflite_classifier.segments(stream_windows(frames, 4)))

    assert len(got) == len(expected) == 6  # 23 frames at 5 fps: five windows of 4 and one of 3
    for (segment, so_far), (want, want_so_far) in zip(got, expected):
        assert (segment.first_index, segment.last_index) == (want.first_index, want.last_index)
        assert segment.class_index == want.class_index
        assert int(np.argmax(so_far)) == int(np.argmax(want_so_far))
        # Probabilities within 1e-4: the same float32 network, run by other kernels.
        np.testing.assert_allclose(so_far, want_so_far, atol=1e-4)
        np.testing.assert_allclose(segment.probabilities, want.probabilities, atol=1e-4)
        assert segment.confidence == pytest.approx(want.confidence, abs=1e-4)


def test_tflite_classify_and_embed_equal_the_tensorflow_path(tflite_classifier, loaded, frames):
    tensorflow = StreamVideoClassifier(loaded.model)

    prediction = tflite_classifier.classify(stream_windows(frames, 4))
    expected = tensorflow.classify(stream_windows(frames, 4))
    embedding = tflite_classifier.embed(stream_windows(frames, 4))

    np.testing.assert_allclose(prediction.probabilities, expected.probabilities, atol=1e-4)
    assert [s.class_index for s in prediction.segments] == [s.class_index for s in expected.segments]
    assert embedding.shape == (480,)
    np.testing.assert_allclose(embedding, tensorflow.embed(stream_windows(frames, 4)), atol=1e-4)


def test_stream_runtimes_score_multi_label_calibrated_weights_with_sigmoids(tflite_classifier, loaded, frames):
    """Weights whose movinet.json says multi-label (and a temperature) get the same scoring on both runtimes."""
    info = FineTunedInfo(
        "a0",
        "stream",
        loaded.labels,
        imgz=IMGZ,
        n_frames=4,
        fps=5.0,
        multi_label=True,
        temperature=2.0,
        thresholds=[0.5] * len(loaded.labels),
    )
    scoring = backend.scoring_for(CONFIG, LoadedModel(None, loaded.labels, source="x", finetuned=info))
    assert scoring == Scoring(True, 2.0, (0.5,) * len(loaded.labels), 0.0)
    tflite = copy.copy(tflite_classifier)  # the module's classifier keeps its softmax scoring
    tflite.scoring = scoring
    tensorflow = StreamVideoClassifier(loaded.model)
    tensorflow.scoring = scoring

    got = list(tflite.segments(stream_windows(frames, 4)))
    expected = list(tensorflow.segments(stream_windows(frames, 4)))

    for (segment, so_far), (want, want_so_far) in zip(got, expected):
        np.testing.assert_allclose(so_far, want_so_far, atol=1e-4)
        np.testing.assert_allclose(segment.probabilities, want.probabilities, atol=1e-4)
        assert so_far.sum() > 2.0  # independent sigmoids over 600 classes, not one distribution


def test_a_second_load_reuses_the_cached_conversion(tflite_classifier, loaded, frames, caplog):
    caplog.set_level("INFO", logger="adapter.runtime.conversion_cache")
    never = Spy(fail=True)

    again = backend.make_classifier(CONFIG.replace(runtime="tflite"), loaded, converter=never)

    assert never.calls == 0
    assert "Reusing the TF Lite conversion" in caplog.text
    window = next(stream_windows(frames, 4))
    (first, _), (want, _) = next(again.segments([window])), next(tflite_classifier.segments([window]))
    np.testing.assert_array_equal(first.probabilities, want.probabilities)


def test_the_default_runtime_is_tflite_except_base_models_on_a_gpu():
    base = MovinetConfig.from_dict({"model_mode": "base"})

    assert CONFIG.resolved_runtime == base.resolved_runtime == "tflite"
    assert backend.runtime_for(base, gpus=[]) == backend.runtime_for(CONFIG, gpus=[]) == "tflite"
    assert backend.runtime_for(base, gpus=["GPU:0"]) == "tensorflow"
    assert backend.runtime_for(CONFIG, gpus=["GPU:0"]) == "tflite"  # stream: LiteRT beats TF per frame
    assert backend.runtime_for(base.replace(runtime="tflite"), gpus=["GPU:0"]) == "tflite"  # asked for
    assert CONFIG.replace(runtime="tensorflow").resolved_runtime == "tensorflow"
    # Another precision than float32 exists only in TF Lite: it keeps a base model there on a GPU.
    assert backend.runtime_for(base.replace(precision="float16"), gpus=["GPU:0"]) == "tflite"


@pytest.mark.parametrize("value", ["tf-lite", "TFLITE", 1, ""])
def test_a_bad_runtime_is_a_config_error_echoing_it(value):
    with pytest.raises(ConfigError, match="runtime") as raised:
        MovinetConfig.from_dict({"runtime": value})
    assert repr(value) in str(raised.value)


# ---------------------------------------------------------------- the cache, with stand-in flatbuffers
def fake_model(folder, weights: bytes = b"weights") -> LoadedModel:
    os.makedirs(folder / "variables", exist_ok=True)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    return LoadedModel(model=None, labels=["a", "b"], source=str(folder))


class FakeConverter:
    def __init__(self):
        self.calls = 0

    def __call__(self, loaded, config):
        self.calls += 1
        return b"step-%d" % self.calls, b"head-%d" % self.calls


@pytest.fixture
def no_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


def test_changed_weights_input_size_or_source_give_another_key(tmp_path, no_user_cache):
    key = conversion_cache.conversion_key(fake_model(tmp_path / "m"), CONFIG)

    assert conversion_cache.conversion_key(fake_model(tmp_path / "copy"), CONFIG) == key  # same weights elsewhere
    assert conversion_cache.conversion_key(fake_model(tmp_path / "other", b"weightz"), CONFIG) != key
    assert conversion_cache.conversion_key(fake_model(tmp_path / "m"), CONFIG.replace(imgz=64)) != key
    assert (
        conversion_cache.conversion_key(fake_model(tmp_path / "m"), CONFIG.replace(hub_handle="https://mirror/a0"))
        != key
    )


def test_the_precision_and_for_int8_the_calibration_videos_give_another_key(tmp_path, no_user_cache):
    model = fake_model(tmp_path / "m")
    videos = tmp_path / "calibration"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"video a")
    int8 = CONFIG.replace(precision="int8", calibration_videos=str(videos))
    float32 = conversion_cache.conversion_key(model, CONFIG)

    assert "precision" not in float32  # float32 entries made before the key existed stay valid
    keys = [float32, conversion_cache.conversion_key(model, CONFIG.replace(precision="float16"))]
    keys.append(conversion_cache.conversion_key(model, int8))
    (videos / "b.mp4").write_bytes(b"video b")
    keys.append(conversion_cache.conversion_key(model, int8))
    assert len({json.dumps(key, sort_keys=True) for key in keys}) == 4
    # The folder's contents count, not its path.
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (copy / name).write_bytes((videos / name).read_bytes())
    assert conversion_cache.conversion_key(model, int8.replace(calibration_videos=str(copy))) == keys[-1]


def test_the_cache_is_written_beside_the_model_and_reused(tmp_path, no_user_cache):
    model, converter = fake_model(tmp_path / "m"), FakeConverter()

    first = conversion_cache.cached_conversion(model, CONFIG, converter)
    second = conversion_cache.cached_conversion(model, CONFIG, converter)
    changed = conversion_cache.cached_conversion(fake_model(tmp_path / "m", b"new weights"), CONFIG, converter)

    assert first == second == (b"step-1", b"head-1") and converter.calls == 2
    assert changed == (b"step-2", b"head-2")
    entries = os.listdir(tmp_path / "m" / conversion_cache.CACHE_DIRNAME)
    assert len(entries) == 2 and not [e for e in entries if e.startswith(".partial")]


@pytest.mark.parametrize("damage", ["truncate", "missing manifest", "bad manifest"])
def test_a_damaged_cache_entry_is_not_used_but_converted_again(tmp_path, no_user_cache, damage, caplog):
    model, converter = fake_model(tmp_path / "m"), FakeConverter()
    conversion_cache.cached_conversion(model, CONFIG, converter)
    (entry,) = (tmp_path / "m" / conversion_cache.CACHE_DIRNAME).iterdir()
    if damage == "truncate":
        (entry / "step.tflite").write_bytes(b"ste")
    elif damage == "missing manifest":
        (entry / "manifest.json").unlink()
    else:
        (entry / "manifest.json").write_text(json.dumps({"key": {}}))

    again = conversion_cache.cached_conversion(model, CONFIG, converter)

    assert again == (b"step-2", b"head-2") and converter.calls == 2
    assert conversion_cache.cached_conversion(model, CONFIG, converter) == again and converter.calls == 2


def test_an_unwritable_model_folder_caches_in_the_user_cache(tmp_path, no_user_cache, monkeypatch):
    model, converter = fake_model(tmp_path / "m"), FakeConverter()
    (tmp_path / "m" / conversion_cache.CACHE_DIRNAME).write_text("a file where the folder would go")

    conversion_cache.cached_conversion(model, CONFIG, converter)
    conversion_cache.cached_conversion(model, CONFIG, converter)

    assert converter.calls == 1
    assert os.listdir(tmp_path / "user-cache" / "movinet-adapter" / conversion_cache.CACHE_DIRNAME)


def test_fine_tuned_weights_downloaded_to_a_new_folder_reuse_the_conversion(tmp_path, no_user_cache):
    info = FineTunedInfo("a0", "stream", ["a", "b"], imgz=IMGZ, n_frames=4, fps=5.0, weights_filename="w.h5")

    def downloaded(folder):
        folder.mkdir()
        (folder / "w.h5").write_bytes(b"fine-tuned weights")
        return LoadedModel(None, ["a", "b"], source=str(folder), finetuned=info)

    converter = FakeConverter()
    first = conversion_cache.cached_conversion(downloaded(tmp_path / "deploy-1"), CONFIG, converter)
    again = conversion_cache.cached_conversion(downloaded(tmp_path / "deploy-2"), CONFIG, converter)

    assert first == again and converter.calls == 1


# ---------------------------------------------------------------- precision: int8 and float16 on a fine-tuned model
@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> LoadedModel:
    """A 3-class a0 stream model as fine-tuning saves it (random, seeded weights).

    A few classes, as fine-tuned models have: the 600 random Kinetics logits are nearly tied,
    so their top-1 would say nothing about quantization.
    """
    import tensorflow as tf
    import tf_keras

    from adapter.model.loading import save_finetuned
    from adapter.model.network import build_classifier

    folder = tmp_path_factory.mktemp("finetuned-stream")
    tf_keras.utils.set_random_seed(5)
    model = build_classifier("a0", "stream", num_classes=3)
    model({**model.init_states(tf.constant([1, 1, IMGZ, IMGZ, 3])), "image": tf.zeros([1, 1, IMGZ, IMGZ, 3])})
    save_finetuned(model, str(folder), FineTunedInfo("a0", "stream", ["a", "b", "c"], imgz=IMGZ, n_frames=4, fps=5.0))
    return load_model(CONFIG, str(folder))


@pytest.fixture(scope="module")
def calibration_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    for k, pattern in enumerate(("moving_square", "noise", "color_bars")):
        write_video(folder / f"c{k}.mp4", frames=20, fps=10, pattern=pattern, seed=k)
    return folder


class Recorder:
    """The real stream converter, keeping what it returned."""

    def __call__(self, loaded, config):
        self.flatbuffers = conversion.convert_stream(loaded, config)
        return self.flatbuffers


def tensor_types(flatbuffer: bytes) -> set:
    from ai_edge_litert.interpreter import Interpreter

    return {np.dtype(detail["dtype"]).name for detail in Interpreter(model_content=flatbuffer).get_tensor_details()}


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_a_lower_precision_runtime_converts_so_and_agrees_with_float32_frame_by_frame(
    finetuned, calibration_folder, frames, no_user_cache, precision
):
    config = CONFIG.replace(runtime="tflite", precision=precision, calibration_videos=str(calibration_folder))
    recorder = Recorder()
    lower = backend.make_classifier(config, finetuned, converter=recorder)
    float32 = backend.make_classifier(CONFIG.replace(runtime="tflite"), finetuned)

    got = [(s.class_index, int(np.argmax(so_far))) for s, so_far in lower.segments(stream_windows(frames, 1))]
    expected = [(s.class_index, int(np.argmax(so_far))) for s, so_far in float32.segments(stream_windows(frames, 1))]

    step_types = tensor_types(recorder.flatbuffers[0])
    assert ("int8" in step_types) == (precision == "int8") and ("float16" in step_types) == (precision == "float16")
    assert "float32" in step_types  # inputs and outputs stay float32
    assert len(got) == len(expected) == 23
    agreement = np.mean([a == b for a, b in zip(got, expected)], axis=0)
    print(f"{precision} runtime top-1 agreement per frame (own window, so far): {agreement}")
    assert agreement.min() >= 0.9


def test_int8_without_a_calibration_folder_is_refused_naming_the_key_and_folder(finetuned, tmp_path, no_user_cache):
    from adapter.runtime.calibration import CalibrationError

    missing = str(tmp_path / "no-such-folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, reason in ((missing, "is not a folder"), (str(empty), "holds no file")):
        config = CONFIG.replace(precision="int8", calibration_videos=folder)
        with pytest.raises(CalibrationError, match=f"calibration_videos {folder!r} {reason}"):
            backend.make_classifier(config, finetuned, converter=Spy(fail=True))
