"""Every stream variant end to end against its real-time budget (issue 17 §3).

Run by hand from the repository root:

    .venv/bin/python benchmarks/stream_realtime.py [--variants a0 a1 a2 a3 a4 a5] [--cores 1 2]
        [--precisions float32 int8] [--seconds 20] [--repeats 2] [--models DIR]

For each movinet-<variant>-stream preset at its own input (imgz, fps), `MovinetAdapter.predict`
(what `movinet predict` runs: fused decoding, prefetch, the tflite runtime) of a 1280x720 30 fps
H.264 video (benchmarks/common.py), in a fresh process pinned to the first N cores (the runtime
and decoder use one thread per usable core, so "1 core" is the whole pipeline on one core).
Each precision comes from the adapter's own conversion (int8: the recipe of docs/int8.md,
calibrated on two other generated videos). The weights are random, made to look trained
(benchmarks/common.trained_looking; speed does not depend on their values, except that a zero
rezero scale would drop branches), exported in hub format and loaded as the published handle.
Conversions are made once, before any timing, and kept beside the exports in --models.

Per run: the best of --repeats predictions after a warm-up video, as ms per sampled frame
(wall time / sampled frames), against the budget 1000 / fps; and, in the same process, its parts
alone: decoding and preprocessing (the adapter's reader, frames kept in memory), then the model's
step on those frames (the runtime's classifier), so each one's share shows. The official anchor
(tf-models MoViNet README: TF Lite float32, one core of a Xeon W-2135) is printed beside it.
Prints one JSON line per measurement with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import load_average, time_parts, trained_looking_hub_export, write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ms per frame, tf-models official/projects/movinet/README.md (TF Lite float32, 1 core of a Xeon W-2135).
OFFICIAL_ANCHOR_MS = {"a0": 16, "a1": 33, "a2": 66, "a3": 120, "a4": 300, "a5": 450}


def hub_cache_for(models: str, model_id: str) -> str:
    """A TFHUB_CACHE_DIR where the variant's published stream handle resolves to its trained-looking export."""
    from adapter.core.config import MovinetConfig
    from adapter.model.hub import hub_cache_name, kinetics_handle

    export = trained_looking_hub_export(model_id, "stream", models)
    handle = kinetics_handle(MovinetConfig.from_dict({"model_id": model_id, "model_mode": "stream"}))
    folder = os.path.join(models, f"tfhub-{model_id}-stream")
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, hub_cache_name(handle))
    if not os.path.islink(link):
        os.symlink(export, link)
    return folder


def child(args) -> dict:
    """One (variant, precision) in this process: a warm-up, then timed predictions, the reader alone and the model alone."""
    if args.cores:
        os.sched_setaffinity(0, set(range(args.cores)))
    os.environ["TFHUB_CACHE_DIR"] = args.hub_cache
    from adapter.cli.options import offline_adapter
    from adapter.core.presets import preset_model
    from adapter.video.inputs import local_video

    overrides = {"runtime": "tflite", "precision": args.precision}
    if args.precision == "int8":
        overrides["calibration_videos"] = args.calibration
    adapter = offline_adapter(preset_model(f"movinet-{args.variant}-stream"), overrides)
    start = time.perf_counter()
    adapter.load(None)
    adapter.predict([local_video(args.warmup)])  # converts on the first call, or reads the cached conversion
    record = {"load_and_first_prediction_seconds": round(time.perf_counter() - start, 1)}
    if args.prepare:
        return record
    predict, parts = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        adapter.predict([local_video(args.video)])
        predict.append(time.perf_counter() - start)
        if adapter.failures:
            raise RuntimeError(adapter.failures)
        parts.append(time_parts(adapter, args.video))  # decoding alone, then the model alone
    return {
        **record,
        "frames": parts[0]["sampled_frames"],
        "predict_seconds": predict,
        "decode_seconds": [part["decode_seconds"] for part in parts],
        "model_seconds": [part["model_seconds"] for part in parts],
    }


def run_child(args, variant: str, precision: str, cores: int, files: dict, prepare: bool) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--variant",
        variant,
        "--precision",
        precision,
        "--child-cores",
        str(cores),
        "--repeats",
        str(args.repeats),
        "--hub-cache",
        files["hub_cache"],
        "--video",
        files["video"],
        "--warmup",
        files["warmup"],
        "--calibration",
        files["calibration"],
    ] + (["--prepare"] if prepare else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} {precision} on {cores} core(s) failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--variants", nargs="+", choices=list(OFFICIAL_ANCHOR_MS), default=list(OFFICIAL_ANCHOR_MS))
    parser.add_argument(
        "--cores", type=int, nargs="+", choices=range(1, len(os.sched_getaffinity(0)) + 1), default=[1, 2]
    )
    parser.add_argument("--precisions", nargs="+", choices=["float32", "float16", "int8"], default=["float32", "int8"])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default=os.path.join(REPO, ".cache", "benchmark-models"))
    parser.add_argument(
        "--prepare-only", action="store_true", help="make the exports and conversions, time nothing (run it first)"
    )
    # One measurement in a fresh process (internal).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    for name in ("--variant", "--precision", "--hub-cache", "--video", "--warmup", "--calibration"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--child-cores", dest="child_cores", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.cores = args.child_cores
        print(json.dumps(child(args)), flush=True)
        return 0

    from adapter.core.variants import VARIANTS

    os.makedirs(args.models, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="bench-stream-realtime-")
    video, warmup = os.path.join(folder, "video.mp4"), os.path.join(folder, "warmup.mp4")
    write_benchmark_video(video, seconds=args.seconds, codec="libx264")
    write_benchmark_video(warmup, seconds=2, codec="libx264")
    # Calibration videos are kept with the models: the int8 conversion's cache key digests them.
    calibration = os.path.join(args.models, "calibration-videos")
    if not os.path.isdir(calibration):
        os.makedirs(calibration + ".partial", exist_ok=True)
        for index, (width, height) in enumerate([(640, 360), (1280, 720)]):
            write_benchmark_video(
                os.path.join(calibration + ".partial", f"calibration-{index}.mp4"),
                seconds=4,
                codec="libx264",
                width=width,
                height=height,
            )
        os.rename(calibration + ".partial", calibration)
    for variant in args.variants:
        files = {
            "hub_cache": hub_cache_for(args.models, variant),
            "video": video,
            "warmup": warmup,
            "calibration": calibration,
        }
        fps = VARIANTS[variant].fps
        for precision in args.precisions:
            # Convert (or find the conversion) before any timing, on every core.
            prepared = run_child(args, variant, precision, 0, files, prepare=True)
            print(json.dumps({"event": "prepared", "variant": variant, "precision": precision, **prepared}), flush=True)
        if args.prepare_only:
            continue
        for cores in args.cores:
            for precision in args.precisions:
                before = load_average()
                result = run_child(args, variant, precision, cores, files, prepare=False)
                predict, decode = min(result["predict_seconds"]), min(result["decode_seconds"])
                model = min(result["model_seconds"])
                frames = result["frames"]
                budget_ms = 1000.0 / fps
                end_to_end_ms = predict * 1000 / frames
                record = {
                    "benchmark": "stream_realtime",
                    "variant": variant,
                    "imgz": VARIANTS[variant].imgz,
                    "fps": fps,
                    "cores": cores,
                    "precision": precision,
                    "frames": frames,
                    "end_to_end_ms_per_frame": round(end_to_end_ms, 1),
                    "decode_ms_per_frame": round(decode * 1000 / frames, 1),
                    "model_ms_per_frame": round(model * 1000 / frames, 1),
                    "budget_ms": round(budget_ms, 1),
                    "share_of_budget": round(end_to_end_ms / budget_ms, 2),
                    "x_real_time": round(args.seconds / predict, 1),
                    "end_to_end_fps": round(frames / predict, 1),
                    "official_anchor_ms": OFFICIAL_ANCHOR_MS[variant],
                    "predict_rounds_s": [round(s, 2) for s in result["predict_seconds"]],
                    "load_average_before": before,
                    "load_average_after": load_average(),
                }
                print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
