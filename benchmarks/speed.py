"""Speed headroom (issue 17): fused preprocessing end to end, and int8 against float32 per frame.

Run by hand from the repository root; each part measures its alternatives side by side in one
process, in alternating rounds, so the ratios hold on a shared machine (absolute times do not):

    .venv/bin/python benchmarks/speed.py preprocess [--seconds 30] [--rounds 3] [--models DIR]
    .venv/bin/python benchmarks/speed.py int8 [--variants a0 a1 a2 a3] [--threads 1 2] [--frames 20] [--rounds 4]
    .venv/bin/python benchmarks/speed.py breakdown [--variant a3] [--models-out DIR]
    .venv/bin/python benchmarks/speed.py agreement [--variant a0] [--imgz 64] [--epochs 16]

- preprocess: a 1280x720 30 fps H.264 video of --seconds (benchmarks/common.py), movinet-a0-stream at
  its preset (172 px, 5 fps), runtime tflite: decoding the pictures the sampled frames need alone (no
  conversion), decoding + the full-size path (every kept frame converted to full-size BGR, then
  resized by OpenCV), decoding + the fused path (FFmpeg's scaler resizes while converting), and
  MovinetAdapter.predict end to end with each path (the full-size one by handing the reader no
  shorter_side). The random-weight a0 exports the tests use stand in for the real weights.
- int8: each stream variant at its preset input, random weights made to look trained (rezero scales,
  batch-norm statistics; a rezero scale of 0 removes whole branches), converted by the adapter's
  conversion (float32, and int8 calibrated on a generated video), then the one-frame step timed per
  thread count, float32 and int8 interleaved: the median of --frames steps per round, the best round.
- breakdown: which layers cost what. Every convolution of the variant's float32 step, timed alone as
  a one-op model in float32 and int8 (1 thread), summed by kind, beside the whole step: the
  convolutions' share bounds what int8 can gain, since the rest does not get faster.
- agreement: a 4-class stream model fine-tuned here on generated motion videos (tests/motion_dataset.py's
  directions: no single frame tells them apart), its step converted in float32 and int8 (the same
  conversion, int8 calibrated on other videos of the same kind), run frame by frame over held-out
  videos with each precision carrying its own states: top-1 agreement per frame and per video, and
  each precision's accuracy.

Prints one JSON line per measurement, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from common import load_average, trained_looking, write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from adapter.core.variants import MODEL_IDS as VARIANT_IDS  # noqa: E402  (pure data, no TensorFlow)


def emit(record: dict) -> None:
    print(json.dumps({**record, "load_average": load_average()}), flush=True)


# ------------------------------------------------------------------------------------------- preprocess
def _hub_cache(models_root: str) -> str:
    from runtimes import hub_cache

    return hub_cache(models_root)


def preprocess_benchmark(args) -> None:
    os.environ["TFHUB_CACHE_DIR"] = _hub_cache(args.models)
    from adapter import movinet_adapter
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model
    from adapter.video import reader as video_reader
    from adapter.video.decoders import PyAVDecoder
    from adapter.video.inputs import local_video
    from adapter.video.preprocessing import preprocess_frame

    folder = tempfile.mkdtemp(prefix="bench-speed-")
    path, warmup = os.path.join(folder, "video.mp4"), os.path.join(folder, "warmup.mp4")
    write_benchmark_video(path, seconds=args.seconds, codec="libx264")
    write_benchmark_video(warmup, seconds=2, codec="libx264")
    adapter = offline_adapter(preset_model("movinet-a0-stream"), {"runtime": "tflite"})
    adapter.load(None)
    config = adapter.config
    adapter.predict([local_video(warmup)])

    def reference_pictures():
        # The decoder alone, told which frames are kept (by presentation time, as the reader decides):
        # it decodes those and the pictures they refer to, and converts none.
        reader = video_reader.VideoReader(path, fps=config.frame_rate)
        resampler = reader.resampler()
        frames = PyAVDecoder(path, reader._stream_index).timed_frames(resampler.starts_slot)
        return sum(1 for _, _, lazy in frames if lazy is not None)

    def decode_full_size():
        reader = video_reader.VideoReader(path, fps=config.frame_rate)
        return sum(1 for frame in reader if preprocess_frame(frame.image, config.imgz) is not None)

    def decode_fused():
        reader = video_reader.VideoReader(path, fps=config.frame_rate, shorter_side=config.imgz)
        return sum(1 for frame in reader if preprocess_frame(frame.image, config.imgz) is not None)

    class FullSizeReader(video_reader.VideoReader):
        """The reader as it was: frames at the video's size, resized by preprocess_frame."""

        def __init__(self, *args, shorter_side=None, **kwargs):
            super().__init__(*args, **kwargs)

    def predict_with(reader_class):
        def run():
            movinet_adapter.VideoReader = reader_class
            try:
                adapter.predict([local_video(path)])
            finally:
                movinet_adapter.VideoReader = video_reader.VideoReader
            if adapter.failures:
                raise RuntimeError(adapter.failures)

        return run

    parts = {
        "decode reference pictures alone": reference_pictures,
        "decode + full-size preprocessing (before)": decode_full_size,
        "decode + fused preprocessing": decode_fused,
        "predict, full-size preprocessing (before)": predict_with(FullSizeReader),
        "predict, fused preprocessing": predict_with(video_reader.VideoReader),
    }
    wall = {name: [] for name in parts}
    cpu = {name: [] for name in parts}
    emit({"benchmark": "preprocess", "event": "start", "seconds_of_video": args.seconds})
    for _ in range(args.rounds):
        for name, part in parts.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            part()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    reference = "decode reference pictures alone"
    for name in parts:
        # Each round's ratio to that round's reference decode: the load others put on the cores
        # changes between rounds more than within one.
        ratios = [a / b for a, b in zip(wall[name], wall[reference])]
        emit(
            {
                "benchmark": "preprocess",
                "part": name,
                "best_wall_seconds": round(min(wall[name]), 2),
                "wall_rounds": [round(s, 2) for s in wall[name]],
                "x_real_time": round(args.seconds / min(wall[name]), 1),
                "median_round_ratio_to_reference": round(statistics.median(ratios), 2),
                # CPU seconds of the process (every thread): the work done, less disturbed by the load.
                "best_cpu_seconds": round(min(cpu[name]), 2),
                "cpu_ratio_to_reference": round(min(cpu[name]) / min(cpu[reference]), 2),
            }
        )


# ------------------------------------------------------------------------------------------------- int8
def convert_variant(model_id: str, folder: str) -> dict[str, str]:
    """float32 and int8 step flatbuffers of a stream variant at its preset input (cached in folder)."""
    import tensorflow as tf

    from adapter.core.config import MovinetConfig
    from adapter.core.presets import preset_model
    from adapter.model.network import build_classifier
    from adapter.runtime.calibration import stream_calibration
    from adapter.runtime.conversion import convert, stream_step_function

    configuration = preset_model(f"movinet-{model_id}-stream")["configuration"]
    config = MovinetConfig.from_dict({**configuration, "model_id": model_id, "model_mode": "stream"})
    paths = {
        precision: os.path.join(folder, f"{model_id}-{config.imgz}-{precision}.tflite")
        for precision in ("float32", "int8")
    }
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    tf.keras.utils.set_random_seed(0)
    model = build_classifier(model_id, "stream", num_classes=600)
    shape = [1, 1, config.imgz, config.imgz, 3]
    model({**model.init_states(tf.constant(shape)), "image": tf.zeros(shape)})
    trained_looking(model)
    function, initial = stream_step_function(model, config.imgz)
    video = os.path.join(folder, "calibration.mp4")
    if not os.path.exists(video):
        write_benchmark_video(video, seconds=10, codec="libx264", width=640, height=360)

    def representative():
        return stream_calibration(model, config, [video], initial)

    for precision, quantize in (("float32", "none"), ("int8", "int8")):
        start = time.perf_counter()
        data = convert(function, model, quantize, representative if quantize == "int8" else None)
        with open(paths[precision], "wb") as file:
            file.write(data)
        emit(
            {
                "benchmark": "int8",
                "event": "converted",
                "variant": model_id,
                "imgz": config.imgz,
                "precision": precision,
                "seconds": round(time.perf_counter() - start, 1),
                "mib": round(len(data) / 2**20, 1),
            }
        )
    return paths


def step_runner(path: str, threads: int):
    """The step file as the tflite runtime runs it (runtime.litert_backend.signature_runner)."""
    from adapter.runtime.litert_backend import signature_runner

    with open(path, "rb") as file:
        return signature_runner(file.read(), threads)


def zero_states(runner) -> dict:
    """A stream step's initial states: zeros of each non-image input."""
    import numpy as np

    return {n: np.zeros(d["shape"], d["dtype"]) for n, d in runner.get_input_details().items() if n != "image"}


def median_step_ms(runner, frame, states: dict, steps: int) -> tuple[float, dict]:
    """Median ms of `steps` calls of a stream step on frame, carrying the states.

    Returns:
        (median ms, the states after the last step).
    """
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        outputs = runner(image=frame, **states)
        times.append(time.perf_counter() - start)
        outputs.pop("logits")
        states = outputs
    return statistics.median(times) * 1000, states


def int8_benchmark(args) -> None:
    import numpy as np

    folder = args.models_out or tempfile.mkdtemp(prefix="bench-int8-")
    os.makedirs(folder, exist_ok=True)
    emit({"benchmark": "int8", "event": "start", "folder": folder})
    for model_id in args.variants:
        paths = convert_variant(model_id, folder)
        for threads in args.threads:
            runners = {precision: step_runner(path, threads) for precision, path in paths.items()}
            states = {precision: zero_states(runner) for precision, runner in runners.items()}
            imgz = int(runners["float32"].get_input_details()["image"]["shape"][2])
            frame = np.random.default_rng(0).random((1, 1, imgz, imgz, 3), dtype=np.float32)
            medians = {precision: [] for precision in runners}
            for _ in range(args.rounds):
                for precision, runner in runners.items():
                    median, states[precision] = median_step_ms(runner, frame, states[precision], args.frames)
                    medians[precision].append(median)
            best = {precision: min(values) for precision, values in medians.items()}
            emit(
                {
                    "benchmark": "int8",
                    "variant": model_id,
                    "imgz": imgz,
                    "threads": threads,
                    "float32_ms": round(best["float32"], 2),
                    "int8_ms": round(best["int8"], 2),
                    "speedup": round(best["float32"] / best["int8"], 2),
                    "rounds_ms": {p: [round(v, 2) for v in values] for p, values in medians.items()},
                }
            )


# -------------------------------------------------------------------------------------------- breakdown
def one_op_flatbuffer(function, shape: list[int], precision: str) -> bytes:
    """One op as a TF Lite model; int8 with int8 input and output, so no (de)quantization is timed."""
    import numpy as np
    import tensorflow as tf

    concrete = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [np.random.default_rng(i).normal(0, 2, shape).astype(np.float32)] for i in range(8)
        )
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def one_convolution(operation, kernel, stride: int, padding: str):
    """x -> the convolution of x with kernel (tf.nn.conv2d or tf.nn.depthwise_conv2d)."""
    import tensorflow as tf

    if operation is tf.nn.depthwise_conv2d:
        return lambda x: operation(x, kernel, [1, stride, stride, 1], padding)
    return lambda x: operation(x, kernel, stride, padding)


def invoke_ms(data: bytes, runs: int = 20) -> float:
    """Median ms of one invoke on 1 thread (BUILTIN resolver: XNNPACK, as the runtime runs it)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(3):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def breakdown_benchmark(args) -> None:
    """Which layers cost what: every convolution of the float32 step timed alone, float32 and int8.

    int8 makes convolutions faster and little else (docs/int8.md), so the convolutions' share of
    the float32 step bounds int8's speed-up (Amdahl): step / (step - convs + int8 convs), and
    step / (step - convs) even if convolutions cost nothing.
    """
    import collections
    import math

    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    folder = args.models_out or tempfile.mkdtemp(prefix="bench-int8-")
    os.makedirs(folder, exist_ok=True)
    paths = convert_variant(args.variant, folder)
    # The float32 step's convolutions by shape (the builtin resolver keeps the ops' own tensors readable).
    interpreter = Interpreter(
        model_path=paths["float32"], experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    shapes = collections.Counter()
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        x, w = (tuple(interpreter._get_tensor_details(i, 0)["shape"]) for i in op["inputs"][:2])
        y = tuple(interpreter._get_tensor_details(op["outputs"][0], 0)["shape"])
        stride = x[1] // y[1] if y[1] < x[1] else 1
        padding = "SAME" if y[1] == math.ceil(x[1] / stride) else "VALID"
        shapes[(op["op_name"], x, w, stride, padding)] += 1
    rng = np.random.default_rng(0)
    groups = collections.defaultdict(lambda: {"ops": 0, "float32_ms": 0.0, "int8_ms": 0.0})
    for (name, x, w, stride, padding), count in shapes.items():
        if name == "CONV_2D":
            kernel = tf.constant(rng.normal(0, 0.1, (w[1], w[2], w[3], w[0])).astype(np.float32))
            function = one_convolution(tf.nn.conv2d, kernel, stride, padding)
            group = "CONV_2D 1x1" if w[1] == w[2] == 1 else f"CONV_2D {w[1]}x{w[2]}"
        else:
            kernel = tf.constant(rng.normal(0, 0.1, (w[1], w[2], w[3], 1)).astype(np.float32))
            function = one_convolution(tf.nn.depthwise_conv2d, kernel, stride, padding)
            group = f"DEPTHWISE_CONV_2D {w[1]}x{w[2]}"
        for precision in ("float32", "int8"):
            groups[group][f"{precision}_ms"] += count * invoke_ms(one_op_flatbuffer(function, list(x), precision))
        groups[group]["ops"] += count
    # The whole step on 1 thread, float32 and int8 (the adapter's recipe), for the share.
    step = {}
    for precision, path in paths.items():
        runner = step_runner(path, 1)
        frame = np.random.default_rng(0).random(runner.get_input_details()["image"]["shape"], dtype=np.float32)
        step[precision], _ = median_step_ms(runner, frame, zero_states(runner), args.frames)
    convs_f = sum(g["float32_ms"] for g in groups.values())
    convs_q = sum(g["int8_ms"] for g in groups.values())
    rest = step["float32"] - convs_f
    for group, values in sorted(groups.items(), key=lambda item: -item[1]["float32_ms"]):
        emit(
            {
                "benchmark": "breakdown",
                "variant": args.variant,
                "group": group,
                "ops": values["ops"],
                "float32_ms": round(values["float32_ms"], 2),
                "int8_ms": round(values["int8_ms"], 2),
                "speedup": round(values["float32_ms"] / values["int8_ms"], 2),
            }
        )
    emit(
        {
            "benchmark": "breakdown",
            "variant": args.variant,
            "threads": 1,
            "step_float32_ms": round(step["float32"], 2),
            "step_int8_ms": round(step["int8"], 2),
            "step_speedup": round(step["float32"] / step["int8"], 2),
            "convolutions_float32_ms": round(convs_f, 2),
            "convolutions_int8_ms": round(convs_q, 2),
            "convolution_share_of_float32_step": round(convs_f / step["float32"], 2),
            "bound_with_int8_convolutions": round(step["float32"] / (rest + convs_q), 2),
            "bound_with_free_convolutions": round(step["float32"] / rest, 2),
        }
    )


# -------------------------------------------------------------------------------------------- agreement
def motion_videos(folder: str, per_class: int, seed0: int, size: int, speed: int) -> list[tuple[str, int]]:
    """per_class generated motion videos of each direction (tests/motion_dataset.py's classes) as (path, class)."""
    from tests.motion_dataset import DIRECTIONS
    from tests.videos import write_video

    videos = []
    for seed in range(seed0, seed0 + per_class):
        for label, (dx, dy) in enumerate(DIRECTIONS.values()):
            path = os.path.join(folder, f"{label}-{seed}.mp4")
            write_video(path, frames=48, fps=10, width=size, height=size, direction=(speed * dx, speed * dy), seed=seed)
            videos.append((path, label))
    return videos


def fine_tune_stream(args, config, videos):
    """A stream classifier fine-tuned on the motion videos: clips of args.n_frames from a zero state.

    The stream network is causal, so a clip fed whole from initial states gives the logits the
    frame-by-frame step gives at its last frame: training on clips trains the step the runtime runs.
    (The adapter's train_model fine-tunes base models only; this is the same network and loss.)

    Returns:
        (model, per-epoch training accuracy).
    """
    import numpy as np
    import tensorflow as tf

    from adapter.model.network import build_classifier
    from adapter.runtime.calibration import video_frames

    clips, labels = [], []
    for (path, label), frames in zip(videos, video_frames([p for p, _ in videos], config)):
        frames = np.stack([frame for _, frame in frames])
        for first in range(0, len(frames) - args.n_frames + 1, max(1, args.n_frames // 2)):
            clips.append(frames[first : first + args.n_frames])
            labels.append(label)
    clips, labels = np.stack(clips).astype(np.float32), np.array(labels)
    tf.keras.utils.set_random_seed(args.seed)
    model = build_classifier(args.variant, "stream", num_classes=int(labels.max()) + 1)
    optimizer = tf.keras.optimizers.Adam(args.learning_rate)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images, targets):
        with tf.GradientTape() as tape:
            logits, _ = model({**model.init_states(tf.shape(images)), "image": images}, training=True)
            value = loss(targets, logits)
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == targets, tf.float32))

    rng = np.random.default_rng(args.seed)
    accuracy = []
    for _ in range(args.epochs):
        order = rng.permutation(len(clips))
        batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        values = [float(train_step(tf.constant(clips[b]), tf.constant(labels[b], tf.int32))) for b in batches]
        accuracy.append(round(float(np.mean(values)), 3))
    return model, accuracy


def agreement_benchmark(args) -> None:
    """int8 against float32 on a fine-tuned stream model: top-1 per frame and per video, and accuracy.

    The model is fine-tuned here on generated motion videos (four directions; no single frame tells
    them apart), converted by the adapter's conversion in float32 and int8 (calibrated on other
    videos of the same kind), and both run frame by frame over held-out videos, each carrying its
    own states. Prints the agreement, each precision's accuracy and the float model's decisiveness.
    """
    import numpy as np

    from adapter.core.config import MovinetConfig
    from adapter.runtime.calibration import stream_calibration, video_frames
    from adapter.runtime.conversion import convert, stream_step_function
    from adapter.runtime.litert_backend import signature_runner

    config = MovinetConfig.from_dict({"model_id": args.variant, "model_mode": "stream", "imgz": args.imgz, "fps": 5})
    folder = tempfile.mkdtemp(prefix="bench-agreement-")
    train = motion_videos(folder, args.train_videos, 0, args.size, args.speed)
    calibration = motion_videos(folder, 2, 1000, args.size, args.speed)
    held_out = motion_videos(folder, args.videos, 2000, args.size, args.speed)
    start = time.perf_counter()
    model, train_accuracy = fine_tune_stream(args, config, train)
    train_seconds = time.perf_counter() - start
    function, initial = stream_step_function(model, config.imgz)
    calibration_paths = [path for path, _ in calibration]
    runners = {
        "float32": signature_runner(convert(function, model, "none"), 2),
        "int8": signature_runner(
            convert(function, model, "int8", lambda: stream_calibration(model, config, calibration_paths, initial)), 2
        ),
    }
    frames_agree, frames_total, videos_agree = 0, 0, 0
    right = {precision: 0 for precision in runners}
    right_frames = {precision: 0 for precision in runners}
    # Why frames disagree: the float model's top-2 margin there, and int8's error in the logits.
    gaps = {True: [], False: []}
    signal, noise = 0.0, 0.0
    by_position: dict[int, list[bool]] = {}
    for (_, label), frames in zip(held_out, video_frames([p for p, _ in held_out], config)):
        states = {precision: dict(initial) for precision in runners}
        last = {}
        for position, (_, frame) in enumerate(frames):
            logits = {}
            for precision, runner in runners.items():
                outputs = runner(image=frame[None, None].astype(np.float32), **states[precision])
                logits[precision] = outputs.pop("logits")[0]
                last[precision] = int(np.argmax(logits[precision]))
                right_frames[precision] += last[precision] == label
                states[precision] = outputs
            agree = last["float32"] == last["int8"]
            top2 = np.sort(logits["float32"])[-2:]
            gaps[bool(agree)].append(float(top2[1] - top2[0]))
            centred = logits["float32"] - logits["float32"].mean()
            signal += float(np.sum(centred**2))
            noise += float(np.sum((logits["int8"] - logits["int8"].mean() - centred) ** 2))
            by_position.setdefault(position, []).append(bool(agree))
            frames_agree += agree
            frames_total += 1
        videos_agree += last["float32"] == last["int8"]
        for precision in runners:
            right[precision] += last[precision] == label
    emit(
        {
            "benchmark": "agreement",
            "model": f"{args.variant}-stream fine-tuned, 4 classes, {config.imgz} px, clips of {args.n_frames}",
            "training": {
                "videos": len(train),
                "epochs": args.epochs,
                "seconds": round(train_seconds),
                "train_accuracy_per_epoch": train_accuracy,
            },
            "frames": frames_total,
            "per_frame_top1_agreement": round(frames_agree / frames_total, 3),
            "videos": len(held_out),
            "per_video_top1_agreement": round(videos_agree / len(held_out), 3),
            "video_accuracy": {p: round(right[p] / len(held_out), 3) for p in runners},
            "frame_accuracy": {p: round(right_frames[p] / frames_total, 3) for p in runners},
            "float32_median_top2_logit_gap": {
                "agreeing_frames": round(float(np.median(gaps[True])), 3) if gaps[True] else None,
                "disagreeing_frames": round(float(np.median(gaps[False])), 3) if gaps[False] else None,
            },
            "int8_logit_sqnr_db": round(10 * np.log10(signal / noise), 1) if noise else None,
            "agreement_by_frame_position": [round(float(np.mean(v)), 2) for _, v in sorted(by_position.items())],
        }
    )


def frame_labels(annotations: list[dict]) -> dict[int, str]:
    """Each source frame's label in a video's temporal (segment) annotations, as `movinet predict` wrote them."""
    labels = {}
    for annotation in annotations:
        if annotation["metadata"]["user"]["movinet"]["level"] != "segment":
            continue
        for frame in range(annotation["metadata"]["system"]["frame"], annotation["metadata"]["system"]["endFrame"] + 1):
            labels[frame] = annotation["label"]
    return labels


def video_label(annotations: list[dict]) -> str:
    video = [a for a in annotations if a["metadata"]["user"]["movinet"]["level"] == "video"]
    return max(video, key=lambda a: a["metadata"]["user"]["model"]["confidence"])["label"]


def base_agreement_benchmark(args) -> None:
    """int8 against float32 on a fine-tuned base model, through the command line the user runs.

    `movinet train` fine-tunes a0 base on a generated motion dataset (tests/motion_dataset.py, four
    directions, random initialisation); `movinet predict --weights` then classifies held-out videos
    with the tflite runtime in float32 and in int8 (calibrated on other generated videos), with
    temporal annotations: agreement per frame (the label of the clip covering each frame) and per
    video (the top-1 video annotation), and each precision's accuracy.
    """
    import subprocess

    from tests.motion_dataset import DIRECTIONS, write_motion_dataset

    folder = tempfile.mkdtemp(prefix="bench-agreement-base-")
    write_motion_dataset(
        os.path.join(folder, "data"),
        classes=list(DIRECTIONS),
        train_per_class=args.train_videos,
        validation_per_class=4,
        frames=24,
        fps=5,
        width=args.size,
        height=args.size,
        speed=2 * args.speed,
        two_range_video=False,
    )
    calibration = os.path.join(folder, "calibration")
    os.makedirs(calibration)
    motion_videos(calibration, 2, 1000, args.size, args.speed)
    os.makedirs(os.path.join(folder, "held-out"))
    held_out = motion_videos(os.path.join(folder, "held-out"), args.videos, 2000, args.size, args.speed)
    weights = os.path.join(folder, "weights")
    settings = {"imgz": args.imgz, "n_frames": args.n_frames, "fps": 5}

    def cli(*arguments):
        command = [sys.executable, "-m", "adapter", *arguments]
        for key, value in settings.items():
            command += ["--set", f"{key}={value}"]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)

    start = time.perf_counter()
    cli(
        "train",
        os.path.join(folder, "data"),
        "--output",
        weights,
        "--model",
        "movinet-a0-base",
        "--set",
        f"num_epochs={args.epochs}",
        "--set",
        f"batch_size={args.batch_size}",
        "--set",
        f"learning_rate={args.learning_rate}",
        "--set",
        "pretrained=false",
        "--set",
        "runtime=tensorflow",
    )
    train_seconds = time.perf_counter() - start
    with open(os.path.join(weights, "training_history.json")) as file:
        history = json.load(file)
    results = {}
    for precision in ("float32", "int8"):
        output = os.path.join(folder, f"{precision}.json")
        extra = ["--set", f"calibration_videos={calibration}"] if precision == "int8" else []
        cli(
            "predict",
            *[path for path, _ in held_out],
            "--weights",
            weights,
            "--output",
            output,
            "--set",
            "runtime=tflite",
            "--set",
            f"precision={precision}",
            "--set",
            "temporal_annotations=true",
            *extra,
        )
        with open(output) as file:
            results[precision] = json.load(file)
    labels = list(DIRECTIONS)
    frames_agree = frames_total = videos_agree = 0
    right = {precision: 0 for precision in results}
    for path, label in held_out:
        per_frame = {precision: frame_labels(results[precision][path]) for precision in results}
        for frame, name in per_frame["float32"].items():
            frames_agree += per_frame["int8"].get(frame) == name
            frames_total += 1
        top1 = {precision: video_label(results[precision][path]) for precision in results}
        videos_agree += top1["float32"] == top1["int8"]
        for precision in results:
            right[precision] += top1[precision] == labels[label]
    emit(
        {
            "benchmark": "agreement",
            "model": f"a0-base fine-tuned by movinet train, 4 classes, {args.imgz} px, clips of {args.n_frames}",
            "training": {
                "videos": args.train_videos * len(labels),
                "epochs": args.epochs,
                "seconds": round(train_seconds),
                "val_accuracy_per_epoch": [round(v, 3) for v in history["history"].get("val_accuracy", [])],
            },
            "frames": frames_total,
            "per_frame_top1_agreement": round(frames_agree / frames_total, 3),
            "videos": len(held_out),
            "per_video_top1_agreement": round(videos_agree / len(held_out), 3),
            "video_accuracy": {p: round(right[p] / len(held_out), 3) for p in results},
        }
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parts = parser.add_subparsers(dest="part", required=True)
    pre = parts.add_parser("preprocess")
    pre.add_argument("--seconds", type=float, default=30)
    pre.add_argument("--rounds", type=int, default=3)
    pre.add_argument("--models", default=os.path.join(REPO, ".cache", "test-models"))
    quant = parts.add_parser("int8")
    quant.add_argument("--variants", nargs="+", choices=VARIANT_IDS, default=["a0", "a1", "a2", "a3"])
    quant.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    quant.add_argument("--frames", type=int, default=20)
    quant.add_argument("--rounds", type=int, default=4)
    quant.add_argument("--models-out", help="folder keeping the conversions between runs")
    agree = parts.add_parser("agreement")
    agree.add_argument("--variant", choices=VARIANT_IDS, default="a0")
    agree.add_argument("--imgz", type=int, default=64)
    agree.add_argument("--size", type=int, default=96, help="video width and height")
    agree.add_argument("--speed", type=int, default=4, help="pixels per video frame (10 fps)")
    agree.add_argument("--train-videos", type=int, default=32, help="training videos per class")
    agree.add_argument("--videos", type=int, default=8, help="held-out videos per class (two more calibrate)")
    agree.add_argument("--n-frames", type=int, default=8)
    agree.add_argument("--epochs", type=int, default=16)
    agree.add_argument("--batch-size", type=int, default=8)
    agree.add_argument("--learning-rate", type=float, default=0.003)
    agree.add_argument("--seed", type=int, default=0)
    agree.add_argument("--mode", choices=("stream", "base"), default="stream")
    split = parts.add_parser("breakdown")
    split.add_argument("--variant", choices=VARIANT_IDS, default="a3")
    split.add_argument("--frames", type=int, default=30)
    split.add_argument("--models-out", help="folder keeping the conversions between runs")
    args = parser.parse_args(argv)
    benchmarks = {
        "preprocess": preprocess_benchmark,
        "int8": int8_benchmark,
        "breakdown": breakdown_benchmark,
        "agreement": agreement_benchmark,
    }
    if args.part == "agreement" and args.mode == "base":
        benchmarks["agreement"] = base_agreement_benchmark
    benchmarks[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
