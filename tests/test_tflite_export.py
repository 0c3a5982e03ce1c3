"""`export-tflite`: the exported TF Lite files run with the LiteRT interpreter and agree with the
Keras models the adapter predicts with: the stream model fed frame by frame with its states,
and a fine-tuned base model clip by clip.

Each conversion costs about a minute here, so each file is converted once per module
(stream: float and int8; fine-tuned base: float, float16 and int8) and every test of a
file runs on that one conversion."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from adapter import cli, tflite_export
from adapter.clips import base_clips, stream_windows
from adapter.config import MovinetConfig
from adapter.errors import UsageError
from adapter.loading import FineTunedInfo, load_model, save_finetuned
from adapter.network import build_classifier
from adapter.preprocessing import preprocess_frame
from adapter.tflite_compat import tflite_compatible
from adapter.video import VideoReader
from tests.videos import write_text_as_video, write_video

IMGZ = 48
STREAM = ["--model", "movinet-a0-stream", "--set", f"imgz={IMGZ}", "--set", "fps=5"]
BASE_LABELS = ["left", "right", "still"]
BASE_FRAMES = 4


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=2).get_signature_runner()


def softmax(logits):
    return tf.nn.softmax(np.asarray(logits, np.float32), axis=-1).numpy()


def frames_of(path, imgz):
    reader = VideoReader(str(path), fps=5)
    return [(frame.index, preprocess_frame(frame.image, imgz)) for frame in reader]


def keras_stream_windows(model, frames, n_frames):
    """The adapter's stream path: windows through the Keras model, states carried; logits after each."""
    states, outputs = None, []
    for window in stream_windows(frames, n_frames):
        image = tf.constant(window.frames[None])
        if states is None:
            states = model.init_states(tf.shape(image))
        logits, states = model({**states, "image": image}, training=False)
        outputs.append(logits.numpy()[0])
    return np.array(outputs)


def tflite_stream_windows(runner, frames, n_frames):
    """The exported file fed one frame at a time from zero states; logits at each window's last frame."""
    states = {
        name: np.zeros(detail["shape"], detail["dtype"]) for name, detail in runner.get_input_details().items() if name != "image"
    }
    outputs = []
    for position, (_, frame) in enumerate(frames, start=1):
        result = runner(image=frame[None, None].astype(np.float32), **states)
        logits = result.pop("logits")
        states = result
        if position % n_frames == 0 or position == len(frames):
            outputs.append(logits[0])
    return np.array(outputs)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("tflite-videos")
    calibration = root / "calibration"
    calibration.mkdir()
    for k, pattern in enumerate(("moving_square", "noise", "color_bars")):
        write_video(calibration / f"c{k}.mp4", frames=20, fps=10, pattern=pattern, seed=k)
    write_text_as_video(calibration / "notes.mp4")  # skipped with a warning, not fatal
    test_video = write_video(root / "test.mp4", frames=40, fps=10, seed=7)
    long_video = write_video(root / "long.mp4", frames=80, fps=10, pattern="noise", seed=11)
    return {"calibration": calibration, "test": test_video, "long": long_video}


@pytest.fixture(scope="module")
def stream_exports(hub_cache, videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite-stream")
    paths = {}
    for quantize in ("none", "int8"):
        path = out / f"a0-stream-{quantize}.tflite"
        extra = ["--calibration-videos", str(videos["calibration"])] if quantize == "int8" else []
        assert cli.main(["export-tflite", *STREAM, "--output", str(path), "--quantize", quantize, *extra]) == 0
        paths[quantize] = path
    return paths


@pytest.fixture(scope="module")
def stream_model(hub_cache):
    return load_model(MovinetConfig.from_dict({"model_id": "a0", "model_mode": "stream", "imgz": IMGZ}), None).model


def test_float_stream_export_matches_the_keras_stream_window_by_window(stream_exports, stream_model, videos):
    frames = frames_of(videos["test"], IMGZ)
    expected = keras_stream_windows(stream_model, frames, n_frames=4)

    got = tflite_stream_windows(interpreter(stream_exports["none"]), frames, n_frames=4)

    assert got.shape == expected.shape == (5, 600)  # 40 frames at 10 fps -> 20 at 5 fps -> 5 windows
    np.testing.assert_allclose(softmax(got), softmax(expected), atol=1e-4)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_the_description_beside_the_file_names_labels_input_and_zero_initial_states(stream_exports, stream_model):
    description = json.loads(stream_exports["none"].with_suffix(".json").read_text())

    assert description["model_mode"] == "stream" and description["quantize"] == "none"
    assert len(description["labels"]) == 600 and description["labels"][0] == "abseiling"
    assert description["inputs"]["image"] == [1, 1, IMGZ, IMGZ, 3]
    # The documented start is all zeros: that is what the model's own init_states gives.
    initial = stream_model.init_states(tf.constant([1, 1, IMGZ, IMGZ, 3]))
    assert description["states_start_at"] == "zeros"
    assert all(not np.any(value.numpy()) for value in initial.values())


def test_int8_stream_export_is_smaller_and_mostly_agrees_on_top1(stream_exports, stream_model, videos):
    frames = frames_of(videos["test"], IMGZ)
    expected = keras_stream_windows(stream_model, frames, n_frames=1)

    got = tflite_stream_windows(interpreter(stream_exports["int8"]), frames, n_frames=1)

    assert stream_exports["int8"].stat().st_size < 0.5 * stream_exports["none"].stat().st_size
    agreement = float((got.argmax(-1) == expected.argmax(-1)).mean())
    print(f"int8 stream top-1 agreement per frame: {agreement:.2f}")
    assert agreement >= 0.5


@pytest.fixture(scope="module")
def finetuned_base(tmp_path_factory):
    """Fine-tuned weights of a 3-class a0 base model (random, seeded), as train/save() write them."""
    folder = tmp_path_factory.mktemp("finetuned-base")
    tf_keras.utils.set_random_seed(3)
    model = build_classifier("a0", "base", num_classes=len(BASE_LABELS))
    model(tf.zeros([1, BASE_FRAMES, IMGZ, IMGZ, 3]))
    info = FineTunedInfo("a0", "base", BASE_LABELS, imgz=IMGZ, n_frames=BASE_FRAMES, fps=5.0)
    save_finetuned(model, str(folder), info)
    return folder


@pytest.fixture(scope="module")
def base_exports(finetuned_base, videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite-base")
    paths = {}
    for quantize in ("none", "float16", "int8"):
        path = out / f"finetuned-base-{quantize}.tflite"
        extra = ["--calibration-videos", str(videos["calibration"])] if quantize == "int8" else []
        assert cli.main(["export-tflite", "--weights", str(finetuned_base), "--output", str(path), "--quantize", quantize, *extra]) == 0
        paths[quantize] = path
    return paths


def base_logits(finetuned_base, video):
    """The adapter's base path on video: its clips through the fine-tuned Keras model (pooling untouched)."""
    config = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "base", "imgz": IMGZ, "n_frames": BASE_FRAMES})
    model = load_model(config, str(finetuned_base)).model
    clips = np.stack([clip.frames for clip in base_clips(frames_of(video, IMGZ), BASE_FRAMES)])
    return clips, model(tf.constant(clips), training=False).numpy()


def tflite_clips(runner, clips):
    return np.array([runner(image=clip[None])["logits"][0] for clip in clips])


def test_tflite_compatible_switches_the_3d_poolings_without_changing_the_outputs():
    model = build_classifier("a0", "base", num_classes=3)
    # 50 px: feature maps of odd sizes (25, 13, 7) test the poolings' 'same' padding at the edges.
    clips = tf.random.uniform([2, BASE_FRAMES, 50, 50, 3], seed=1)
    before = model(clips, training=False).numpy()
    pooling = [layer for layer in model.submodules if type(layer) is tf_keras.layers.AveragePooling3D]

    assert tflite_compatible(model) == len(pooling) > 0

    assert not any(type(layer) is tf_keras.layers.AveragePooling3D for layer in model.submodules)
    np.testing.assert_allclose(model(clips, training=False).numpy(), before, rtol=1e-5, atol=1e-6)
    assert tflite_compatible(model) == 0


def test_fine_tuned_base_float_export_has_its_labels_and_matches_the_keras_model_clip_by_clip(
    base_exports, finetuned_base, videos
):
    description = json.loads(base_exports["none"].with_suffix(".json").read_text())
    clips, expected = base_logits(finetuned_base, videos["long"])

    got = tflite_clips(interpreter(base_exports["none"]), clips)

    assert description["labels"] == BASE_LABELS and description["model_mode"] == "base"
    assert description["inputs"]["image"] == [1, BASE_FRAMES, IMGZ, IMGZ, 3] and description["n_frames"] == BASE_FRAMES
    assert description["source"] == str(finetuned_base)
    assert got.shape == expected.shape == (10, 3)  # 80 frames at 10 fps -> 40 at 5 fps -> 10 clips
    np.testing.assert_allclose(softmax(got), softmax(expected), atol=1e-4)
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_float16_and_int8_base_exports_are_smaller_and_mostly_agree_on_top1(base_exports, finetuned_base, videos):
    clips, expected = base_logits(finetuned_base, videos["long"])
    float_size = base_exports["none"].stat().st_size
    for quantize, size_ratio, threshold in (("float16", 0.6, 0.9), ("int8", 0.5, 0.5)):
        got = tflite_clips(interpreter(base_exports[quantize]), clips)
        agreement = float((got.argmax(-1) == expected.argmax(-1)).mean())
        print(f"{quantize} base top-1 agreement per clip: {agreement:.2f}")
        assert base_exports[quantize].stat().st_size < size_ratio * float_size, quantize
        assert json.loads(base_exports[quantize].with_suffix(".json").read_text())["quantize"] == quantize
        assert agreement >= threshold, quantize


def test_model_and_weights_together_are_refused(finetuned_base, tmp_path, capsys):
    output = tmp_path / "m.tflite"

    assert cli.main(["export-tflite", "--model", "movinet-a0-stream", "--weights", str(finetuned_base), "--output", str(output)]) == 2

    assert "--model or --weights" in capsys.readouterr().err and not output.exists()


def test_the_command_offers_the_quantizations_the_exporter_knows():
    assert cli.QUANTIZATIONS == tflite_export.QUANTIZATIONS
    with pytest.raises(UsageError, match="Received: quantize='int4'"):
        tflite_export.convert(None, None, "int4")


def test_int8_without_usable_calibration_videos_exits_2(hub_cache, tmp_path, capsys):
    nothing = tmp_path / "bad"
    nothing.mkdir()
    write_text_as_video(nothing / "notes.mp4")
    output = tmp_path / "m.tflite"

    assert cli.main(["export-tflite", *STREAM, "--output", str(output), "--quantize", "int8"]) == 2
    assert "--calibration-videos" in capsys.readouterr().err
    assert cli.main(["export-tflite", *STREAM, "--output", str(output), "--quantize", "int8", "--calibration-videos", str(nothing)]) == 2
    assert "could be read" in capsys.readouterr().err
    assert not output.exists()
