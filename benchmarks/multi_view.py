"""Multi-view testing: what three crops cost, and what they buy on action the centre crop cuts off.

Run by hand from the repository root:

    .venv/bin/python benchmarks/multi_view.py [--weights DIR] [--per-cell 8] [--seconds 10]

- cost: a0 base with its preset input (imgz 172, 5 fps), the random-weight export the tests use
  (same network, same cost as the real weights), predicting a generated 1280x720 30 fps H.264
  video of --seconds seconds with test_crops 1 and 3 (runtime tflite, the CPU default, and
  tensorflow), alternating rounds in one process after a warm-up video; seconds per video.
- accuracy: a two-class model (square moving left / right, 48x48 frames, no single frame tells
  them apart) fine-tuned from random initialisation through `movinet train` (or --weights from
  an earlier run), then predicted on generated wide frames (144x48, three times as wide as
  tall) whose square moves in one third only: the left, centre or right. A centre crop sees
  only the centre third, so two videos in three show it no action. Top-1 accuracy and mean
  top-1 probability per region for test_crops 1, and 3 with view_fusion "mean" and
  "max_confidence".
Prints the tables in Markdown with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time

from common import load_average

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL = dict(imgz=32, n_frames=4, batch_size=4, fps=5)
REGIONS = ("left", "centre", "right")
FUSIONS = (
    ("1 crop (centre)", 1, "mean"),
    ("3 crops, mean", 3, "mean"),
    ("3 crops, max_confidence", 3, "max_confidence"),
)


def set_options(values: dict) -> list[str]:
    return [argument for key, value in values.items() for argument in ("--set", f"{key}={value}")]


def train_model(root: str, epochs: int, seed: int) -> str:
    """A two-class motion model trained through the command line; returns its weights folder."""
    from tests.motion_dataset import write_motion_dataset

    data = os.path.join(root, "motion")
    write_motion_dataset(
        data,
        classes=("left", "right"),
        train_per_class=32,
        validation_per_class=8,
        width=48,
        height=48,
        speed=6,
        seed=seed,
    )
    weights = os.path.join(root, "weights")
    options = {**SMALL, "num_epochs": epochs, "learning_rate": 0.003, "pretrained": "false", "runtime": "tensorflow"}
    import tf_keras

    from adapter.cli.parser import main as movinet

    # The command line takes no seed: seed TensorFlow in this process, as the tests do.
    tf_keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    if movinet(["train", data, "--output", weights, *set_options(options)]) != 0:
        raise RuntimeError("movinet train failed")
    with open(os.path.join(weights, "training_history.json")) as file:
        record = json.load(file)
    accuracy = record["history"]["val_accuracy"][record["best_epoch"]]
    print(
        f"trained in {time.perf_counter() - started:.0f} s, kept validation accuracy {accuracy:.3f} "
        f"(load average {load_average()})",
        flush=True,
    )
    return weights


def write_wide_set(folder: str, per_cell: int) -> list[tuple[str, str, str]]:
    """(path, region, label) of the wide test videos: per_cell per region and direction."""
    from tests.videos import generate_wide_action_frames, write_frames

    os.makedirs(folder, exist_ok=True)
    videos = []
    for region_index, region in enumerate(REGIONS):
        for label, direction in (("left", (-6, 0)), ("right", (6, 0))):
            for k in range(per_cell):
                path = os.path.join(folder, f"{region}_{label}_{k}.avi")
                frames = generate_wide_action_frames(
                    frames=16, width=144, height=48, region=region_index, direction=direction, seed=1000 + k
                )
                write_frames(path, frames, fps=5, width=144, height=48)
                videos.append((path, region, label))
    return videos


def accuracy_table(weights: str, videos: list[tuple[str, str, str]]) -> list[str]:
    from adapter.cli.options import loaded_adapter
    from adapter.video.inputs import local_video

    args = argparse.Namespace(model="movinet-a0-base", manifest=None, set=[], weights=weights)
    adapter = loaded_adapter(args)
    base_config = adapter.config
    rows = [
        "| test views | " + " | ".join(f"{r}: accuracy (mean top-1 p)" for r in REGIONS) + " | all: accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, crops, fusion in FUSIONS:
        adapter.config = base_config.replace(test_crops=crops, view_fusion=fusion)
        hits = {r: [] for r in REGIONS}
        confidence = {r: [] for r in REGIONS}
        for path, region, label in videos:
            prediction, _ = adapter.classify_video(local_video(path))
            best = int(prediction.probabilities.argmax())
            hits[region].append(adapter.loaded.labels[best] == label)
            confidence[region].append(float(prediction.probabilities[best]))
        cells = [f"{sum(hits[r]) / len(hits[r]):.3f} ({statistics.mean(confidence[r]):.2f})" for r in REGIONS]
        overall = sum(sum(h) for h in hits.values()) / len(videos)
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {overall:.3f} |")
        print(rows[-1], flush=True)
    return rows


def timing_rows(seconds: float, rounds: int, models: str) -> list[str]:
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    from common import write_benchmark_video
    from runtimes import hub_cache

    os.environ["TFHUB_CACHE_DIR"] = hub_cache(models)
    from adapter.cli.options import manifest_model, offline_adapter
    from adapter.video.inputs import local_video

    folder = tempfile.mkdtemp(prefix="bench-views-")
    video = os.path.join(folder, "video.mp4")
    warm = os.path.join(folder, "warm.mp4")
    write_benchmark_video(video, seconds, "libx264")
    write_benchmark_video(warm, 1.0, "libx264")
    rows = [
        "| runtime | test_crops | s per video (median) | relative to 1 crop | of which decoding and cropping |",
        "| --- | --- | --- | --- | --- |",
    ]
    decoding = {}
    model_rows = [
        "| runtime | test_crops | clips | model ms per clip (median) | relative to 1 crop |",
        "| --- | --- | --- | --- | --- |",
    ]
    for runtime in ("tflite", "tensorflow"):
        adapter = offline_adapter(manifest_model(None, "movinet-a0-base"), {"runtime": runtime})
        adapter.load(None)
        base_config = adapter.config
        times = {1: [], 3: []}
        for crops in (1, 3):
            adapter.config = base_config.replace(test_crops=crops)
            adapter.classify_video(local_video(warm))
        for _ in range(rounds):
            for crops in (1, 3):
                adapter.config = base_config.replace(test_crops=crops)
                started = time.perf_counter()
                adapter.classify_video(local_video(video))
                times[crops].append(time.perf_counter() - started)
                if runtime == "tflite":  # the clips alone, without the model (the same for both runtimes)
                    started = time.perf_counter()
                    clips, _ = adapter.video_clips(local_video(video))
                    for _ in clips:
                        pass
                    decoding.setdefault(crops, []).append(time.perf_counter() - started)
        one = statistics.median(times[1])
        for crops in (1, 3):
            median = statistics.median(times[crops])
            decoded = statistics.median(decoding[crops])
            rows.append(f"| {runtime} | {crops} | {median:.2f} | {median / one:.2f}x | {decoded:.2f} |")
            print(rows[-1], flush=True)
        # The model alone: the same clips, already decoded and cropped, in alternating rounds.
        prepared = {}
        for crops in (1, 3):
            adapter.config = base_config.replace(test_crops=crops)
            prepared[crops] = list(adapter.video_clips(local_video(video))[0])
        adapter.config = base_config
        model_times = {1: [], 3: []}
        for _ in range(2 * rounds):
            started = time.perf_counter()
            adapter.classifier.classify(prepared[1])
            model_times[1].append(time.perf_counter() - started)
            started = time.perf_counter()
            adapter.classifier.classify_views(prepared[3], "mean")
            model_times[3].append(time.perf_counter() - started)
        one = statistics.median(model_times[1])
        clips = len(prepared[1])
        for crops in (1, 3):
            median = statistics.median(model_times[crops])
            model_rows.append(f"| {runtime} | {crops} | {clips} | {1000 * median / clips:.0f} | {median / one:.2f}x |")
            print(model_rows[-1], flush=True)
    return rows + ["", *model_rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--weights", help="a model from an earlier run (skips training)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-cell", type=int, default=8, help="wide videos per region and direction")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the timed 720p video")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="/work/main/.cache/test-models", help="the tests' exported a0 models")
    parser.add_argument("--only", default="accuracy,cost")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dtlpy").setLevel(logging.WARNING)
    print(f"load average before: {load_average()}", flush=True)
    root = tempfile.mkdtemp(prefix="bench-multi-view-")
    if "accuracy" in args.only:
        weights = args.weights or train_model(root, args.epochs, args.seed)
        print(f"weights: {weights}", flush=True)
        videos = write_wide_set(os.path.join(root, "wide"), args.per_cell)
        print("\n".join(accuracy_table(weights, videos)), flush=True)
    if "cost" in args.only:
        print("\n".join(timing_rows(args.seconds, args.rounds, args.models)), flush=True)
    print(f"load average after: {load_average()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
