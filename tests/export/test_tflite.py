"""`export-tflite`: the exported TF Lite files run with the LiteRT interpreter and agree with the
Keras models the adapter predicts with: the stream model fed frame by frame with its states,
and a fine-tuned base model clip by clip.

Each conversion costs seconds to a minute here, so each file is converted once (stream:
float, and a fine-tuned one in float16 and int8; fine-tuned base: float, float16 and int8), kept in the test model cache
under a key of what it was made from, and every test of a file runs on that conversion."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from adapter.cli import parser as cli
from adapter.core.config import MovinetConfig
from adapter.core.errors import UsageError
from adapter.model.layer_swaps import tflite_compatible
from adapter.model.loading import FineTunedInfo, load_model, save_finetuned
from adapter.model.network import build_classifier
from adapter.runtime import conversion
from adapter.video.clips import base_clips, stream_windows
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoReader
from tests.videos import write_text_as_video, write_video

IMGZ = 48
STREAM = ["--model", "movinet-a0-stream", "--set", f"imgz={IMGZ}", "--set", "fps=5"]
BASE_LABELS = ["left", "right", "still"]
BASE_FRAMES = 4


# The exporter's own code: a change to any of these makes the cached conversions stale.
EXPORTER_SOURCES = (
    "runtime/conversion.py",
    "runtime/calibration.py",
    "export/tflite.py",
    "model/layer_swaps.py",
    "model/network.py",
    "model/loading.py",
    "video/clips.py",
    "video/preprocessing.py",
    "video/reader.py",
    "video/decoders.py",
)
ADAPTER = Path(cli.__file__).parent.parent


def content_digest(path: Path, parts: tuple[str, ...] = ()) -> str:
    """sha256 of a file, or of a folder's files (those under parts, if given) with their relative names."""
    digest = hashlib.sha256()
    roots = [path / part for part in parts] if parts else [path]
    files = (
        [path]
        if path.is_file()
        else sorted(p for root in roots for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())
    )
    for file in files:
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def cached_export(cache_root: Path, name: str, argv: list[str], inputs: dict) -> Path:
    """`movinet export-tflite ARGV --output ...`, run only when no earlier run made the same file.

    The key covers the arguments (paths replaced by their contents' digest: the folders are
    temporary), the given inputs (e.g. the hub model loaded) and the exporter's sources;
    the cache root is already keyed by the TensorFlow and tf-models versions.
    """
    digest = hashlib.sha256()
    for arg in argv:
        digest.update((content_digest(Path(arg)) if os.path.exists(arg) else arg).encode())
    for key, path in sorted(inputs.items()):
        # A SavedModel's own files: other tools keep caches inside the folder.
        digest.update(f"{key}={content_digest(Path(path), ('saved_model.pb', 'variables'))}".encode())
    for source in EXPORTER_SOURCES:
        digest.update((ADAPTER / source).read_bytes())
    target = cache_root / "tflite" / f"{name}-{digest.hexdigest()[:16]}.tflite"
    if not target.is_file():
        partial = target.with_name(target.stem + ".partial.tflite")
        # export-tflite refuses an --output whose folder does not exist (it never creates one).
        partial.parent.mkdir(parents=True, exist_ok=True)
        assert cli.main(["export-tflite", *argv, "--output", str(partial)]) == 0
        # Only complete exports become visible to later runs (the .tflite last).
        partial.with_suffix(".json").replace(target.with_suffix(".json"))
        partial.replace(target)
    return target


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
        name: np.zeros(detail["shape"], detail["dtype"])
        for name, detail in runner.get_input_details().items()
        if name != "image"
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
def finetuned_stream(tmp_path_factory):
    """Fine-tuned weights of a 3-class a0 stream model (random, seeded), as train/save() write them.

    int8 is checked on it rather than on the 600-class hub model: that model's random logits
    are nearly tied (their top-2 gap is smaller than int8's error), so their top-1 says
    nothing about the quantization.
    """
    folder = tmp_path_factory.mktemp("finetuned-stream")
    tf_keras.utils.set_random_seed(5)
    model = build_classifier("a0", "stream", num_classes=len(BASE_LABELS))
    model({**model.init_states(tf.constant([1, 1, IMGZ, IMGZ, 3])), "image": tf.zeros([1, 1, IMGZ, IMGZ, 3])})
    info = FineTunedInfo("a0", "stream", BASE_LABELS, imgz=IMGZ, n_frames=BASE_FRAMES, fps=5.0)
    save_finetuned(model, str(folder), info)
    return folder


@pytest.fixture(scope="module")
def stream_exports(hub_cache, exported_models, finetuned_stream, videos):
    """The hub stream model in float; the fine-tuned stream model in float16 and int8."""
    cache = exported_models["stream"].parent
    hub_model = {"hub_model": exported_models["stream"]}
    calibration = ["--calibration-videos", str(videos["calibration"])]
    weights = ["--weights", str(finetuned_stream)]
    return {
        "none": cached_export(cache, "a0-stream-none", [*STREAM, "--quantize", "none"], hub_model),
        "float16": cached_export(cache, "finetuned-stream-float16", [*weights, "--quantize", "float16"], {}),
        "int8": cached_export(cache, "finetuned-stream-int8", [*weights, "--quantize", "int8", *calibration], {}),
    }


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


@pytest.mark.parametrize("quantize,size_ratio,threshold", [("float16", 0.6, 0.9), ("int8", 0.5, 0.9)])
def test_fine_tuned_quantized_stream_export_has_its_labels_is_small_and_mostly_agrees_on_top1(
    stream_exports, finetuned_stream, videos, quantize, size_ratio, threshold
):
    config = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "stream", "imgz": IMGZ})
    model = load_model(config, str(finetuned_stream)).model
    frames = frames_of(videos["test"], IMGZ)
    expected = keras_stream_windows(model, frames, n_frames=1)

    got = tflite_stream_windows(interpreter(stream_exports[quantize]), frames, n_frames=1)

    description = json.loads(stream_exports[quantize].with_suffix(".json").read_text())
    assert description["labels"] == BASE_LABELS and description["quantize"] == quantize
    assert got.shape == expected.shape == (20, len(BASE_LABELS))
    # float32 weights would take 4 bytes a parameter
    assert stream_exports[quantize].stat().st_size < size_ratio * 4 * model.count_params()
    agreement = float((got.argmax(-1) == expected.argmax(-1)).mean())
    print(f"{quantize} stream top-1 agreement per frame: {agreement:.2f}")
    assert agreement >= threshold


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
def base_exports(finetuned_base, exported_models, videos):
    paths = {}
    for quantize in ("none", "float16", "int8"):
        extra = ["--calibration-videos", str(videos["calibration"])] if quantize == "int8" else []
        argv = ["--weights", str(finetuned_base), "--quantize", quantize, *extra]
        paths[quantize] = cached_export(exported_models["base"].parent, f"finetuned-base-{quantize}", argv, {})
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
    assert got.shape == expected.shape == (10, 3)  # 80 frames at 10 fps -> 40 at 5 fps -> 10 clips
    np.testing.assert_allclose(softmax(got), softmax(expected), atol=1e-4)
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_float16_and_int8_base_exports_are_smaller_and_mostly_agree_on_top1(base_exports, finetuned_base, videos):
    clips, expected = base_logits(finetuned_base, videos["long"])
    float_size = base_exports["none"].stat().st_size
    for quantize, size_ratio, threshold in (("float16", 0.6, 0.9), ("int8", 0.5, 0.9)):
        got = tflite_clips(interpreter(base_exports[quantize]), clips)
        agreement = float((got.argmax(-1) == expected.argmax(-1)).mean())
        print(f"{quantize} base top-1 agreement per clip: {agreement:.2f}")
        assert base_exports[quantize].stat().st_size < size_ratio * float_size, quantize
        assert json.loads(base_exports[quantize].with_suffix(".json").read_text())["quantize"] == quantize
        assert agreement >= threshold, quantize


def test_model_and_weights_together_are_refused(finetuned_base, tmp_path, capsys):
    output = tmp_path / "m.tflite"
    both = ["--model", "movinet-a0-stream", "--weights", str(finetuned_base)]

    assert cli.main(["export-tflite", *both, "--output", str(output)]) == 2

    assert "--model or --weights" in capsys.readouterr().err and not output.exists()


def test_the_command_offers_the_quantizations_the_exporter_knows():
    assert cli.QUANTIZATIONS == conversion.QUANTIZATIONS
    with pytest.raises(UsageError, match="Received: quantize='int4'"):
        conversion.convert(None, None, "int4")


def test_int8_without_usable_calibration_videos_exits_2(hub_cache, tmp_path, capsys):
    nothing = tmp_path / "bad"
    nothing.mkdir()
    write_text_as_video(nothing / "notes.mp4")
    output = tmp_path / "m.tflite"

    assert cli.main(["export-tflite", *STREAM, "--output", str(output), "--quantize", "int8"]) == 2
    assert "--calibration-videos" in capsys.readouterr().err
    unreadable = ["--calibration-videos", str(nothing)]
    assert cli.main(["export-tflite", *STREAM, "--output", str(output), "--quantize", "int8", *unreadable]) == 2
    assert "could be read" in capsys.readouterr().err
    assert not output.exists()


def _fake_conversion(monkeypatch, flatbuffer: bytes):
    """export_tflite without TensorFlow's converter: the network step and the conversion return at once."""
    from types import SimpleNamespace

    from adapter.export import tflite

    monkeypatch.setattr(tflite, "clip_function", lambda model, n_frames, imgz: "function")
    monkeypatch.setattr(tflite, "convert", lambda function, model, quantize, samples=None: flatbuffer)
    loaded = SimpleNamespace(model=None, labels=["a", "b"], source="weights-folder")
    config = MovinetConfig.from_dict({"imgz": 32, "n_frames": 4})
    return tflite, loaded, config


def test_export_writes_the_model_and_its_description_with_nothing_else_beside_them(tmp_path, monkeypatch):
    tflite, loaded, config = _fake_conversion(monkeypatch, b"new model")
    output = tmp_path / "model.tflite"

    tflite.export_tflite(loaded, config, str(output))

    assert output.read_bytes() == b"new model"
    assert json.loads((tmp_path / "model.json").read_text())["labels"] == ["a", "b"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json", "model.tflite"]


def test_an_export_that_fails_to_write_leaves_the_previous_export_whole(tmp_path, monkeypatch):
    from adapter.core import files

    tflite, loaded, config = _fake_conversion(monkeypatch, b"new model")
    output = tmp_path / "model.tflite"
    output.write_bytes(b"previous model")
    (tmp_path / "model.json").write_text('{"labels": ["previous"]}')

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        tflite.export_tflite(loaded, config, str(output))

    assert output.read_bytes() == b"previous model"
    assert json.loads((tmp_path / "model.json").read_text()) == {"labels": ["previous"]}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json", "model.tflite"]
