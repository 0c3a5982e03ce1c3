"""Prediction speed and memory: the adapter against its own parts and a naive pipeline.

Run by hand from the repository root (takes several minutes on 2 cores):

    .venv/bin/python benchmarks/predict_pipeline.py [--seconds 60] [--long-minutes 10]

Writes a 1280x720 30 fps H.264 video of --seconds, and one of --long-minutes, then for
movinet-a0-base and movinet-a0-stream (the presets' configuration: 172 px, 5 fps,
13-frame clips; the default runtime, tflite on CPU), each measurement in a fresh process:

* adapter: MovinetAdapter.predict on the video (after a warm-up on a short video, so
  tf.function tracing is not counted): wall time and peak RSS growth;
* decode: VideoReader (resizing while decoding, as predict does) + preprocess_frame alone on
  the same video (frames kept in memory);
* model: the same classifier on those in-memory frames alone;
  (each of these three: best of --repeats runs, since a shared 2-core machine is noisy)
* naive (base only): decode every frame at the native 30 fps, resize and crop all of
  them, and run the whole video through the TF Hub base model as published
  (tensorflow_hub.load, stock layers) in one call. If it runs out of
  memory, shorter videos are tried and the longest it completes is compared instead.

Weights: a random-initialised export of the official architecture (speed and memory do
not depend on the weight values). Targets: adapter <= 1.15 x (decode + model);
>= 10x faster than naive with <= 1/10 of its peak memory; the adapter's peak memory the
same for the short and the long video, in both modes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import memory_kib, reset_peak_rss, time_parts, write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("base", "stream")


def _adapter(mode: str):
    sys.path.insert(0, REPO)
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model

    adapter = offline_adapter(preset_model(f"movinet-a0-{mode}"), {})
    adapter.load(None)
    return adapter


def _warm_up(adapter, tmp: str) -> None:
    from adapter.video.inputs import local_video

    path = os.path.join(tmp, "warmup.mp4")
    write_benchmark_video(path, seconds=6, codec="libx264")
    adapter.predict([local_video(path)])


def child_adapter(mode: str, path: str, tmp: str, repeats: int) -> dict:
    """Best wall time of `repeats` predictions; peak RSS growth over all of them."""
    from adapter.video.inputs import local_video

    adapter = _adapter(mode)
    _warm_up(adapter, tmp)
    reset_peak_rss()
    before = memory_kib()["VmRSS"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        (collection,) = adapter.predict([local_video(path)])
        times.append(time.perf_counter() - start)
    peak = memory_kib()["VmHWM"]
    if adapter.failures:
        raise RuntimeError(adapter.failures)
    return {
        "seconds": min(times),
        "all_seconds": times,
        "rss_growth_mib": (peak - before) / 1024,
        "annotations": len(collection.annotations),
    }


def child_parts(mode: str, path: str, tmp: str, repeats: int) -> dict:
    """Decode + preprocess alone, then the model alone on the same frames (best of repeats each)."""
    adapter = _adapter(mode)
    _warm_up(adapter, tmp)
    runs = [time_parts(adapter, path) for _ in range(repeats)]
    return {
        "decode_seconds": min(run["decode_seconds"] for run in runs),
        "model_seconds": min(run["model_seconds"] for run in runs),
        "sampled_frames": runs[0]["sampled_frames"],
    }


def child_naive(path: str, tmp: str, repeats: int) -> dict:
    """Every frame at native rate, all resized, one call of the TF Hub model as published."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub

    from adapter.video.preprocessing import preprocess_frame
    from adapter.video.reader import VideoReader

    hub_model = tensorflow_hub.load("https://tfhub.dev/tensorflow/movinet/a0/base/kinetics-600/classification/3")

    def model(clip, training=False):
        return hub_model({"image": tf.constant(clip)}, training=training)

    model(np.zeros([1, 13, 172, 172, 3], np.float32))  # load and warm the graph once
    reset_peak_rss()
    before = memory_kib()["VmRSS"]
    start = time.perf_counter()
    frames = np.stack([preprocess_frame(f.image, 172) for f in VideoReader(path, fps=None)])
    logits = model(frames[None], training=False)
    tf.nn.softmax(logits).numpy()
    seconds = time.perf_counter() - start
    peak = memory_kib()["VmHWM"]
    return {"seconds": seconds, "rss_growth_mib": (peak - before) / 1024, "frames": len(frames)}


def run_child(kind: str, mode: str, path: str, tmp: str, repeats: int = 1) -> dict | None:
    """Run one measurement in a fresh process; None if it was killed (out of memory)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind, mode, path, tmp, str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if result.returncode != 0:
        print(
            f"  {kind} {mode} on {os.path.basename(path)} failed (exit {result.returncode}): "
            f"{result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else ''}",
            flush=True,
        )
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of predict and of its parts on the short video; best kept"
    )
    parser.add_argument("--child", nargs=5, metavar=("KIND", "MODE", "PATH", "TMP", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, mode, path, tmp, repeats = args.child
        sys.path.insert(0, REPO)
        runner = {"adapter": child_adapter, "parts": child_parts}.get(kind)
        result = runner(mode, path, tmp, int(repeats)) if runner else child_naive(path, tmp, int(repeats))
        print(json.dumps(result))
        return

    tmp = tempfile.mkdtemp(prefix="movinet-bench-")
    _ensure_hub_models(tmp)
    short = _benchmark_video(args.seconds)
    long = _benchmark_video(args.long_minutes * 60)

    rows = {}
    for mode in MODES:
        rows[mode] = {
            "adapter": run_child("adapter", mode, short, tmp, args.repeats),
            "parts": run_child("parts", mode, short, tmp, args.repeats),
            "adapter_long": run_child("adapter", mode, long, tmp),
        }
        print(f"{mode}: {json.dumps(rows[mode])}", flush=True)
    naive, naive_seconds = None, args.seconds
    while naive is None and naive_seconds >= 5:
        naive_path = _benchmark_video(naive_seconds)
        naive = run_child("naive", "base", naive_path, tmp)
        if naive is None:
            naive_seconds /= 2
    adapter_at_naive_length = rows["base"]["adapter"]
    if naive is not None and naive_seconds != args.seconds:
        adapter_at_naive_length = run_child("adapter", "base", naive_path, tmp)
    print(f"naive: {json.dumps(naive)} on {naive_seconds:.0f} s", flush=True)
    _report(rows, naive, naive_seconds, adapter_at_naive_length, args)


def _report(rows, naive, naive_seconds, adapter_at_naive_length, args) -> None:
    print(
        f"\n{args.seconds:.0f} s and {args.long_minutes:.0f} min of 1280x720 30 fps; a0 at 172 px, 5 fps, 13-frame clips; {os.cpu_count()} CPUs"
    )
    print(
        f"{'mode':<7} {'predict s':>10} {'decode s':>9} {'model s':>8} {'ratio':>6} {'peak +MiB 1 min':>16} {'peak +MiB long':>15}"
    )
    for mode, row in rows.items():
        adapter, parts, long = row["adapter"], row["parts"], row["adapter_long"]
        if not (adapter and parts and long):
            print(f"{mode:<7} (a measurement failed, see above)")
            continue
        ratio = adapter["seconds"] / (parts["decode_seconds"] + parts["model_seconds"])
        print(
            f"{mode:<7} {adapter['seconds']:>10.1f} {parts['decode_seconds']:>9.1f} {parts['model_seconds']:>8.1f} "
            f"{ratio:>6.2f} {adapter['rss_growth_mib']:>16.0f} {long['rss_growth_mib']:>15.0f}"
        )
    if naive and adapter_at_naive_length:
        print(
            f"\nnaive base on {naive_seconds:.0f} s ({naive['frames']} frames in one call): {naive['seconds']:.1f} s, "
            f"peak +{naive['rss_growth_mib']:.0f} MiB; adapter on the same video: {adapter_at_naive_length['seconds']:.1f} s, "
            f"peak +{adapter_at_naive_length['rss_growth_mib']:.0f} MiB"
        )
        print(
            f"speed-up {naive['seconds'] / adapter_at_naive_length['seconds']:.1f}x, "
            f"memory {adapter_at_naive_length['rss_growth_mib'] / naive['rss_growth_mib']:.3f} of naive"
        )
    else:
        print("\nthe naive pipeline completed no video length tried")


def _benchmark_video(seconds: float) -> str:
    """The 720p test video of this length, written once into .cache/bench-videos."""
    path = os.path.join(REPO, ".cache", "bench-videos", f"720p-{seconds:g}s.mp4")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        start = time.perf_counter()
        frames = write_benchmark_video(path + ".partial.mp4", seconds, "libx264")
        os.rename(path + ".partial.mp4", path)
        print(
            f"wrote {os.path.basename(path)}: {frames} frames 1280x720 @ 30 fps in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return path


def _ensure_hub_models(tmp: str) -> None:
    """Random-weight exports of a0 base/stream in a hub cache under the real handles."""
    sys.path.insert(0, REPO)
    from adapter.model.hub import hub_cache_name

    cache = os.path.join(REPO, ".cache", "bench-hub")
    for mode in MODES:
        handle = f"https://tfhub.dev/tensorflow/movinet/a0/{mode}/kinetics-600/classification/3"
        target = os.path.join(cache, hub_cache_name(handle))
        if not os.path.isfile(os.path.join(target, "saved_model.pb")):
            subprocess.run(
                [sys.executable, "-m", "adapter", "export-hub", "--model-id", "a0", "--mode", mode, "--output", target],
                check=True,
                cwd=REPO,
                capture_output=True,
            )
    os.environ["TFHUB_CACHE_DIR"] = cache


if __name__ == "__main__":
    main()
