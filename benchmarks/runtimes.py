"""The runtimes side by side: stream step per frame, base clip, end-to-end predict, cold start.

Run by hand from the repository root (the random-weight a0 exports the tests use stand in for
the real weights: same network, same cost):

    .venv/bin/python benchmarks/runtimes.py [--models /work/main/.cache/test-models] [--only step,clip,predict,cold,convert]

- step: a0 stream at imgz 172, frames fed one at a time, ms per frame of the model step for
  runtime "tensorflow" (the tf.function the adapter calls) and "tflite" (the LiteRT step),
  measured in alternating rounds in one process.
- clip: a0 base with the preset's imgz and n_frames, ms per clip for runtime "tensorflow"
  (BaseVideoClassifier, layer_swaps' temporal-tap convolutions, batches of 1 and of the default
  batch_size) and "tflite" (the LiteRT clip model, one clip per call), alternating rounds.
- predict: MovinetAdapter.predict (what `movinet predict` runs) of a 1280x720 30 fps H.264
  video, sampled at the preset's 5 fps, after a warm-up video; seconds of video per second;
  then decoding and preprocessing the same video alone.
- cold: in fresh processes, a bare `import tensorflow`, then import + load + first prediction
  of a 1 s clip for a0 base and a0 stream (each runtime; tflite with its conversion cached),
  with the breakdown.
- convert: the tflite runtime's conversion (stream: step and head; base: the clip model), each in
  a fresh process with the preset's input and random weights (the cost does not depend on their
  values), timed with its peak memory: for a0 the converter given the Keras model (TensorFlow's
  documented call, which serialises every layer first) against the variables-only module the
  adapter passes, side by side; then a1-a5 (``--variants``) the adapter's way.
Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import memory_kib, reset_peak_rss, write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDLE = "https://tfhub.dev/tensorflow/movinet/a0/{mode}/kinetics-600/classification/3"


def hub_cache(models_root: str) -> str:
    """A TFHUB_CACHE_DIR holding the cached a0 exports under their real handles' sha1 (as the tests do)."""
    sys.path.insert(0, REPO)
    from tests.conftest import _cache_root, handle_sha1

    os.environ.setdefault("MOVINET_TEST_CACHE", models_root)
    folder = tempfile.mkdtemp(prefix="bench-tfhub-")
    for mode in ("base", "stream"):
        os.symlink(_cache_root() / f"a0-{mode}", os.path.join(folder, handle_sha1(mode)))
    return folder


def step_benchmark(frames: int, rounds: int) -> dict:
    """ms per frame of each runtime's model step, a0 stream at imgz 172, one frame per call."""
    import numpy as np
    import tensorflow as tf

    from adapter.core.config import MovinetConfig
    from adapter.model.loading import load_model
    from adapter.runtime.conversion import convert_stream
    from adapter.runtime.conversion_cache import cached_conversion
    from adapter.runtime.litert_backend import TFLiteStreamClassifier
    from adapter.runtime.tf_backend import StreamVideoClassifier

    config = MovinetConfig.from_dict({"model_id": "a0", "model_mode": "stream", "imgz": 172})
    loaded = load_model(config, None)
    tensorflow = StreamVideoClassifier(loaded.model)
    flatbuffers = cached_conversion(loaded, config, convert_stream)
    tflite = TFLiteStreamClassifier(*flatbuffers)  # default threads: one per core
    single = TFLiteStreamClassifier(*flatbuffers, num_threads=1)
    images = np.random.default_rng(0).random((frames, 1, 1, 172, 172, 3), np.float32)

    def run_tensorflow():
        states = loaded.model.init_states(tf.constant([1, 1, 172, 172, 3]))
        start = time.perf_counter()
        for image in images:
            logits, states = tensorflow._step(states, tf.constant(image))
        logits.numpy()
        return (time.perf_counter() - start) / frames * 1000

    def run_tflite(classifier=tflite):
        states = classifier._initial
        start = time.perf_counter()
        for image in images:
            outputs = classifier._step(image=image, **states)
            outputs.pop("logits")
            states = outputs
        return (time.perf_counter() - start) / frames * 1000

    run_tensorflow(), run_tflite(), run_tflite(single)  # warm-up: tracing, delegate preparation
    times = {"tensorflow": [], "tflite": [], "tflite_1_thread": []}
    for _ in range(rounds):
        times["tensorflow"].append(run_tensorflow())
        times["tflite"].append(run_tflite())
        times["tflite_1_thread"].append(run_tflite(single))
    result = {name: round(statistics.median(values), 2) for name, values in times.items()}
    return {
        "benchmark": "step",
        "ms_per_frame": result,
        "speedup": round(result["tensorflow"] / result["tflite"], 1),
        "tflite_threads": tflite._threads,
        "frames": frames,
        "rounds": rounds,
        "all_ms": {k: [round(v, 2) for v in values] for k, values in times.items()},
    }


def clip_benchmark(clips: int, rounds: int) -> dict:
    """ms per clip of each runtime on a0 base with the preset's imgz and n_frames."""
    import numpy as np

    from adapter.core.config import MovinetConfig
    from adapter.core.presets import preset_configuration
    from adapter.model.loading import load_model
    from adapter.runtime.conversion import convert_base
    from adapter.runtime.conversion_cache import cached_conversion
    from adapter.runtime.litert_backend import TFLiteBaseClassifier
    from adapter.runtime.tf_backend import BaseVideoClassifier
    from adapter.video.clips import Clip

    config = MovinetConfig.from_dict(preset_configuration("a0", "base"))
    shape = (config.n_frames, config.imgz, config.imgz, 3)
    # Two loads: the conversion switches its network's poolings, the tensorflow path keeps the stock ones.
    (flatbuffer,) = cached_conversion(load_model(config, None), config, convert_base, ("clip.tflite",))
    model = load_model(config, None).model
    data = np.random.default_rng(0).random((clips, *shape), np.float32)
    video = [Clip(frames, i * shape[0], i * shape[0] + shape[0] - 1) for i, frames in enumerate(data)]
    runners = {
        "tensorflow_batch_1": BaseVideoClassifier(model, 1),
        f"tensorflow_batch_{config.batch_size}": BaseVideoClassifier(model, config.batch_size),
        "tflite": TFLiteBaseClassifier(flatbuffer),
        "tflite_1_thread": TFLiteBaseClassifier(flatbuffer, num_threads=1),
    }

    def run(classifier):
        start = time.perf_counter()
        classifier.classify(video)
        return (time.perf_counter() - start) / clips * 1000

    for classifier in runners.values():  # warm-up: tracing, delegate preparation
        run(classifier)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, classifier in runners.items():
            times[name].append(run(classifier))
    result = {name: round(statistics.median(values), 1) for name, values in times.items()}
    return {
        "benchmark": "clip",
        "clip": list(shape),
        "ms_per_clip": result,
        "speedup_vs_batch_1": round(result["tensorflow_batch_1"] / result["tflite"], 2),
        "tflite_threads": runners["tflite"]._threads,
        "clips": clips,
        "rounds": rounds,
        "all_ms": {k: [round(v, 1) for v in values] for k, values in times.items()},
    }


def predict_benchmark(seconds: float, runtime: str, folder: str) -> dict:
    """x real time of MovinetAdapter.predict for movinet-a0-stream on a 720p 30 fps video."""
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model
    from adapter.video.inputs import local_video

    path, warmup = os.path.join(folder, "video.mp4"), os.path.join(folder, "warmup.mp4")
    if not os.path.exists(path):
        write_benchmark_video(path, seconds=seconds, codec="libx264")
        write_benchmark_video(warmup, seconds=2, codec="libx264")
    adapter = offline_adapter(preset_model("movinet-a0-stream"), {"runtime": runtime})
    adapter.load(None)
    adapter.predict([local_video(warmup)])
    start = time.perf_counter()
    adapter.predict([local_video(path)])
    elapsed = time.perf_counter() - start
    if adapter.failures:
        raise RuntimeError(adapter.failures)
    return {
        "benchmark": "predict",
        "runtime": runtime,
        "video_seconds": seconds,
        "seconds": round(elapsed, 2),
        "x_real_time": round(seconds / elapsed, 1),
    }


def decode_benchmark(seconds: float, folder: str) -> dict:
    """Decoding and preprocessing alone, as predict reads the video (5 fps, 172 px)."""
    from adapter.video.preprocessing import preprocess_frame
    from adapter.video.reader import VideoReader

    start = time.perf_counter()
    kept = sum(
        1
        for frame in VideoReader(os.path.join(folder, "video.mp4"), fps=5)
        if preprocess_frame(frame.image, 172) is not None
    )
    elapsed = time.perf_counter() - start
    return {
        "benchmark": "decode only",
        "frames_kept": kept,
        "seconds": round(elapsed, 2),
        "x_real_time": round(seconds / elapsed, 1),
    }


def cold_child(name: str, runtime: str, clip: str) -> dict:
    """Import, load and first prediction, timed, in this (fresh) process."""
    start = time.perf_counter()
    sys.path.insert(0, REPO)
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model
    from adapter.video.inputs import local_video

    adapter = offline_adapter(preset_model(name), {"runtime": runtime} if runtime != "default" else {})
    imported = time.perf_counter()
    adapter.load(None)
    loaded = time.perf_counter()
    adapter.predict([local_video(clip)])
    done = time.perf_counter()
    if adapter.failures:
        raise RuntimeError(adapter.failures)
    return {
        "import_s": round(imported - start, 2),
        "load_s": round(loaded - imported, 2),
        "first_call_s": round(done - loaded, 2),
    }


def timed_process(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return time.perf_counter() - start, output


def cold_benchmark(folder: str) -> list[dict]:
    clip = os.path.join(folder, "clip.mp4")
    write_benchmark_video(clip, seconds=1, codec="libx264")
    results = []
    bare, _ = timed_process([sys.executable, "-c", "import tensorflow"])
    results.append({"benchmark": "cold", "what": "python -c 'import tensorflow'", "process_s": round(bare, 2)})
    print(json.dumps(results[-1]), flush=True)
    runs = [(f"movinet-a0-{mode}", runtime) for mode in ("base", "stream") for runtime in ("tensorflow", "tflite")]
    for name, runtime in runs:
        seconds, output = timed_process([sys.executable, __file__, "--cold-child", name, runtime, clip])
        breakdown = json.loads(output.strip().splitlines()[-1])
        results.append(
            {
                "benchmark": "cold",
                "what": f"{name} runtime={runtime}",
                "process_s": round(seconds, 2),
                "x_bare_import": round(seconds / bare, 2),
                **breakdown,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def convert_child(model_id: str, mode: str, owner: str) -> dict:
    """One tflite-runtime conversion of a randomly initialised preset model, timed, in this process."""
    sys.path.insert(0, REPO)
    import tensorflow as tf

    from adapter.core.config import MovinetConfig
    from adapter.core.presets import preset_configuration
    from adapter.model.loading import LoadedModel
    from adapter.model.network import build_classifier
    from adapter.runtime import conversion
    from adapter.runtime.conversion import convert_base, convert_stream

    config = MovinetConfig.from_dict(preset_configuration(model_id, mode))
    model = build_classifier(model_id, mode, num_classes=600)
    if mode == "stream":
        shape = [1, 1, config.imgz, config.imgz, 3]
        model({**model.init_states(tf.constant(shape)), "image": tf.zeros(shape)})
    else:
        model(tf.zeros([1, config.n_frames, config.imgz, config.imgz, 3]))
    if owner == "keras-model":

        def keras_owner(concrete_function, keras_model, quantize, representative=None):
            return tf.lite.TFLiteConverter.from_concrete_functions([concrete_function], keras_model).convert()

        conversion.convert = keras_owner
    loaded = LoadedModel(model=model, labels=[str(i) for i in range(600)], source="random weights")
    reset_peak_rss()
    start = time.perf_counter()
    flatbuffers = (convert_stream if mode == "stream" else convert_base)(loaded, config)
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(memory_kib()["VmHWM"] / 1024),
        "mib": round(sum(len(f) for f in flatbuffers) / 2**20, 1),
        "imgz": config.imgz,
        "n_frames": config.n_frames if mode == "base" else 1,
    }


def convert_benchmark(variants: list[str]) -> None:
    runs = [("a0", mode, owner) for mode in ("stream", "base") for owner in ("keras-model", "variables")]
    runs += [(model_id, mode, "variables") for model_id in variants for mode in ("stream", "base")]
    for model_id, mode, owner in runs:
        _, output = timed_process([sys.executable, __file__, "--convert-child", model_id, mode, owner])
        result = json.loads(output.strip().splitlines()[-1])
        print(json.dumps({"benchmark": "convert", "model": f"{model_id}-{mode}", "owner": owner, **result}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--models", default=os.path.join(REPO, ".cache", "test-models"), help="the test model cache")
    parser.add_argument("--only", default="step,clip,predict,cold,convert")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clips", type=int, default=8, help="clips per round of the clip benchmark")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--variants", default="a1,a2,a3,a4,a5", help="variants the convert benchmark adds to a0")
    parser.add_argument("--cold-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--convert-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.cold_child:
        print(json.dumps(cold_child(*args.cold_child)))
        return 0
    if args.convert_child:
        print(json.dumps(convert_child(*args.convert_child)))
        return 0
    os.environ["TFHUB_CACHE_DIR"] = hub_cache(args.models)
    print(json.dumps({"cpus": len(os.sched_getaffinity(0)), "load_average": os.getloadavg()}), flush=True)
    parts = args.only.split(",")
    if "step" in parts:
        print(json.dumps(step_benchmark(args.frames, args.rounds)), flush=True)
    if "clip" in parts:
        print(json.dumps(clip_benchmark(args.clips, args.rounds)), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        if "predict" in parts:
            for runtime in ("tensorflow", "tflite"):
                print(json.dumps(predict_benchmark(args.seconds, runtime, folder)), flush=True)
            print(json.dumps(decode_benchmark(args.seconds, folder)), flush=True)
        if "cold" in parts:
            cold_benchmark(folder)
    if "convert" in parts:
        convert_benchmark([v for v in args.variants.split(",") if v])
    return 0


if __name__ == "__main__":
    sys.exit(main())
