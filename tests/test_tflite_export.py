"""`export-tflite`: the exported TF Lite files run with the LiteRT interpreter and agree with the
Keras stream model the adapter predicts with, fed frame by frame with their states."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from adapter import cli
from adapter.clips import stream_windows
from adapter.config import MovinetConfig
from adapter.loading import FineTunedInfo, save_finetuned
from adapter.network import build_classifier
from adapter.preprocessing import preprocess_frame
from adapter.video import VideoReader
from tests.videos import write_text_as_video, write_video

IMGZ = 48
STREAM = ["--model", "movinet-a0-stream", "--set", f"imgz={IMGZ}", "--set", "fps=5"]


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
    return {"calibration": calibration, "test": test_video}


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
    from adapter.loading import load_model

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


def test_a_fine_tuned_base_model_is_refused_naming_why(tmp_path, capsys):
    folder = tmp_path / "finetuned"
    model = build_classifier("a0", "base", num_classes=2)
    model(tf.zeros([1, 4, 32, 32, 3]))
    save_finetuned(model, str(folder), FineTunedInfo("a0", "base", ["left", "right"], imgz=32, n_frames=4, fps=5.0))
    output = tmp_path / "finetuned.tflite"

    assert cli.main(["export-tflite", "--weights", str(folder), "--output", str(output)]) == 2

    error = capsys.readouterr().err
    assert "movinet-a0-base" in error and "AvgPool3D" in error and "stream" in error
    assert not output.exists()


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
