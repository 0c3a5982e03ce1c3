"""Speed headroom (issue 17): fused preprocessing end to end, and int8 against float32 per frame.

Run by hand from the repository root; each part measures its alternatives side by side in one
process, in alternating rounds, so the ratios hold on a shared machine (absolute times do not):

    .venv/bin/python benchmarks/speed.py preprocess [--seconds 30] [--rounds 3] [--models DIR]
    .venv/bin/python benchmarks/speed.py int8 [--variants a0 a1 a2 a3] [--threads 1 2] [--frames 20] [--rounds 4]
    .venv/bin/python benchmarks/speed.py agreement [--variant a0] [--imgz 172] [--videos 3]

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
- agreement: a few-class stream model's step in float32 and int8 (the same conversion), top-1 per
  frame and per video over generated motion videos (tests/motion_dataset.py's directions), each model
  carrying its own states; calibrated on other videos of the same kind.

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

from common import write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_average() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


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
        # The decoder alone, told which frames are kept: it decodes those and the pictures they refer to.
        reader = video_reader.VideoReader(path, fps=config.frame_rate)
        ratio = reader._ratio
        wanted = lambda index: video_reader._is_kept(index, ratio)  # noqa: E731
        return sum(1 for _, lazy in PyAVDecoder(path, reader._stream_index).frames(wanted) if lazy is not None)

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
def trained_looking(model, seed: int = 1) -> None:
    """Give random weights the shape trained ones have: no zero rezero scale, batch norms not identity."""
    import numpy as np

    rng = np.random.default_rng(seed)
    draws = {
        "scale:0": lambda shape: rng.uniform(0.2, 1.0, shape),
        "gamma:0": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta:0": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_mean:0": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_variance:0": lambda shape: rng.uniform(0.5, 2.0, shape),
    }
    for variable in model.variables:
        draw = draws.get(variable.name.split("/")[-1])
        if draw is not None:
            variable.assign(draw(variable.shape).astype(np.float32))


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
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # As the tflite runtime runs it: BUILTIN resolver (XNNPACK delegate), float I/O through the signature.
    runner = Interpreter(
        model_path=path, num_threads=threads, experimental_op_resolver_type=OpResolverType.BUILTIN
    ).get_signature_runner()
    return runner


def int8_benchmark(args) -> None:
    import numpy as np

    folder = args.models_out or tempfile.mkdtemp(prefix="bench-int8-")
    os.makedirs(folder, exist_ok=True)
    emit({"benchmark": "int8", "event": "start", "folder": folder})
    for model_id in args.variants:
        paths = convert_variant(model_id, folder)
        for threads in args.threads:
            runners = {precision: step_runner(path, threads) for precision, path in paths.items()}
            states = {}
            for precision, runner in runners.items():
                details = runner.get_input_details()
                states[precision] = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "image"}
                imgz = int(details["image"]["shape"][2])
            rng = np.random.default_rng(0)
            frame = rng.random((1, 1, imgz, imgz, 3), dtype=np.float32)
            medians = {precision: [] for precision in runners}
            for _ in range(args.rounds):
                for precision, runner in runners.items():
                    steps = []
                    for _ in range(args.frames):
                        start = time.perf_counter()
                        outputs = runner(image=frame, **states[precision])
                        steps.append(time.perf_counter() - start)
                        outputs.pop("logits")
                        states[precision] = outputs
                    medians[precision].append(statistics.median(steps) * 1000)
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


# -------------------------------------------------------------------------------------------- agreement
def agreement_benchmark(args) -> None:
    """int8 against float32 top-1, per frame and per video, on generated motion videos.

    No trained stream model exists here (fine-tuning makes base models, and real weights cannot be
    downloaded), so the model is a seeded few-class stream model with trained-looking random weights.
    """
    import numpy as np
    import tensorflow as tf

    from adapter.core.config import MovinetConfig
    from adapter.model.network import build_classifier
    from adapter.runtime.calibration import stream_calibration, video_frames
    from adapter.runtime.conversion import convert, stream_step_function
    from tests.motion_dataset import DIRECTIONS
    from tests.videos import write_video

    config = MovinetConfig.from_dict({"model_id": args.variant, "model_mode": "stream", "imgz": args.imgz, "fps": 5})
    folder = tempfile.mkdtemp(prefix="bench-agreement-")
    videos, calibration = [], []
    for seed in range(args.videos + 2):
        for name, (dx, dy) in DIRECTIONS.items():
            path = os.path.join(folder, f"{name}-{seed}.mp4")
            write_video(
                path, frames=40, fps=10, width=160, height=120, direction=(4 * dx, 4 * dy), seed=seed, codec="libx264"
            )
            (calibration if seed >= args.videos else videos).append(path)
    tf.keras.utils.set_random_seed(5)
    model = build_classifier(args.variant, "stream", num_classes=len(DIRECTIONS))
    shape = [1, 1, config.imgz, config.imgz, 3]
    model({**model.init_states(tf.constant(shape)), "image": tf.zeros(shape)})
    trained_looking(model)
    function, initial = stream_step_function(model, config.imgz)
    runners = {
        "float32": step_runner_from_bytes(convert(function, model, "none")),
        "int8": step_runner_from_bytes(
            convert(function, model, "int8", lambda: stream_calibration(model, config, calibration, initial))
        ),
    }
    frames_agree, frames_total, videos_agree = 0, 0, 0
    # How decisive the float model is: agreement means little if it always says one class by a hair.
    float_classes, float_gaps = [], []
    for frames in video_frames(videos, config):
        states = {precision: dict(initial) for precision in runners}
        last = {}
        for _, frame in frames:
            for precision, runner in runners.items():
                outputs = runner(image=frame[None, None].astype(np.float32), **states[precision])
                logits = outputs.pop("logits")[0]
                last[precision] = int(np.argmax(logits))
                states[precision] = outputs
                if precision == "float32":
                    top2 = np.sort(logits)[-2:]
                    float_classes.append(last[precision])
                    float_gaps.append(float(top2[1] - top2[0]))
            frames_agree += last["float32"] == last["int8"]
            frames_total += 1
        videos_agree += last["float32"] == last["int8"]
    emit(
        {
            "benchmark": "agreement",
            "model": f"{args.variant}-stream, {len(DIRECTIONS)} classes, {config.imgz} px, trained-looking random weights",
            "frames": frames_total,
            "per_frame_top1_agreement": round(frames_agree / frames_total, 3),
            "videos": len(videos),
            "per_video_top1_agreement": round(videos_agree / len(videos), 3),
            "float32_frames_per_class": np.bincount(float_classes, minlength=len(DIRECTIONS)).tolist(),
            "float32_median_top2_logit_gap": round(float(np.median(float_gaps)), 3),
        }
    )


def step_runner_from_bytes(data: bytes, threads: int = 2):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=data, num_threads=threads, experimental_op_resolver_type=OpResolverType.BUILTIN
    ).get_signature_runner()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parts = parser.add_subparsers(dest="part", required=True)
    pre = parts.add_parser("preprocess")
    pre.add_argument("--seconds", type=float, default=30)
    pre.add_argument("--rounds", type=int, default=3)
    pre.add_argument("--models", default=os.path.join(REPO, ".cache", "test-models"))
    quant = parts.add_parser("int8")
    quant.add_argument("--variants", nargs="+", default=["a0", "a1", "a2", "a3"])
    quant.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    quant.add_argument("--frames", type=int, default=20)
    quant.add_argument("--rounds", type=int, default=4)
    quant.add_argument("--models-out", help="folder keeping the conversions between runs")
    agree = parts.add_parser("agreement")
    agree.add_argument("--variant", default="a0")
    agree.add_argument("--imgz", type=int, default=172)
    agree.add_argument("--videos", type=int, default=3, help="videos per class (two more calibrate)")
    args = parser.parse_args(argv)
    {"preprocess": preprocess_benchmark, "int8": int8_benchmark, "agreement": agreement_benchmark}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
