"""Seconds of prediction per video, per preset: what sizes the deploy timeout.

Run by hand from the repository root:

    .venv/bin/python benchmarks/predict_cost.py movinet-a0-base=DIR movinet-a5-base=DIR [--seconds 60]

Each NAME=DIR is a preset and a hub-format SavedModel to load in place of the TF Hub
download (a random-weight `movinet export-hub` export times the same as the real weights).
Writes one 1280x720 30 fps H.264 video of --seconds, then for each preset, in a fresh
process with the preset's configuration (so the default runtime: tflite on a CPU pod):
MovinetAdapter.predict on a short video (warm-up: tracing and the TF Lite conversion are not
per-video costs), then the best of --repeats predictions of the long one. Prints JSON, and
last the predict_embed_subset_limit each measured variant's cost gives: the one-minute videos
one child execution processes in CHILD_BUDGET_S at the costlier of its presets, rounded down
to a multiple of 50 (of 10 below 50), and at most the SDK's own default (1000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# dtlpy's default predict_embed_subset_limit: the presets never put more in one execution.
SDK_DEFAULT_SUBSET_LIMIT = 1000


def child(name: str, saved_model: str, path: str, warmup: str, repeats: int) -> dict:
    """Best wall time of `repeats` predictions of one video with one preset."""
    sys.path.insert(0, REPO)
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model
    from adapter.video.inputs import local_video

    adapter = offline_adapter(preset_model(name), {"hub_handle": saved_model})
    adapter.load(None)
    adapter.predict([local_video(warmup)])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        adapter.predict([local_video(path)])
        times.append(time.perf_counter() - start)
    if adapter.failures:
        raise RuntimeError(adapter.failures)
    return {"model": name, "seconds": min(times), "all_seconds": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, saved_model, path, warmup = args.child
        print(json.dumps(child(name, saved_model, path, warmup, args.repeats)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path, warmup = os.path.join(tmp, "video.mp4"), os.path.join(tmp, "warmup.mp4")
        write_benchmark_video(path, seconds=args.seconds, codec="libx264")
        write_benchmark_video(warmup, seconds=4, codec="libx264")
        results = []
        for spec in args.models:
            name, _, saved_model = spec.partition("=")
            command = [
                sys.executable,
                __file__,
                "x=y",
                "--repeats",
                str(args.repeats),
                "--child",
                name,
                saved_model,
                path,
                warmup,
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            result["video_seconds"] = args.seconds
            result["seconds_per_minute_of_video"] = round(result["seconds"] * 60 / args.seconds, 2)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps({"subset_limits": subset_limits(results)}), flush=True)
    return 0


def subset_limits(results: list[dict]) -> dict[str, int]:
    """predict_embed_subset_limit per variant from the measured costs (the costlier mode of each)."""
    sys.path.insert(0, REPO)
    from adapter.core.presets import CHILD_BUDGET_S

    worst: dict[str, float] = {}
    for result in results:
        variant = result["model"].split("-")[1]  # movinet-a0-base -> a0
        worst[variant] = max(worst.get(variant, 0.0), result["seconds_per_minute_of_video"])
    limits = {}
    for variant, cost in sorted(worst.items()):
        videos = CHILD_BUDGET_S / cost
        step = 50 if videos >= 50 else 10
        limits[variant] = min(SDK_DEFAULT_SUBSET_LIMIT, max(1, int(videos // step) * step))
    return limits


if __name__ == "__main__":
    sys.exit(main())
