"""Clean temporal segments: segment F1 with and without smoothing on generated switching videos.

Run by hand from the repository root:

    .venv/bin/python benchmarks/temporal_segments.py [--weights DIR] [--videos 12]

The model: the two-class motion model of benchmarks/multi_view.py (a square moving left or right,
fine-tuned from random initialisation through `movinet train`), or --weights from an earlier run.
The videos: 48x48 at 5 fps, each a few actions (left / right, alternating, 4 to 8 s each) with
the square going on from where it was; in half of the actions the square pauses for 1 to 1.6 s
(its action goes on in the ground truth), which a clip of 4 frames cannot tell apart: the noise
that splits an action. Each video's item JSON carries the actions as labelled ranges, and
`movinet evaluate --set temporal_annotations=true` (run in this process, once per setting)
scores the temporal annotations: frame accuracy, segment F1 at IoU 0.5, edit score, and the
mean number of predicted segments per video against the true number.
Prints the table in Markdown with the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO, os.path.join(REPO, "benchmarks")):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from multi_view import SMALL, load_average, set_options, train_model  # noqa: E402

SETTINGS = (
    ("off (today)", {}),
    ("temporal_smoothing 1 s", {"temporal_smoothing": 1}),
    ("temporal_smoothing 2 s", {"temporal_smoothing": 2}),
    ("temporal_smoothing 3 s", {"temporal_smoothing": 3}),
    ("min_segment_seconds 2", {"min_segment_seconds": 2}),
    ("min_segment_seconds 3", {"min_segment_seconds": 3}),
    ("temporal_smoothing 1 s + min_segment_seconds 2", {"temporal_smoothing": 1, "min_segment_seconds": 2}),
)
DIRECTIONS = {"left": (-6, 0), "right": (6, 0)}


def write_switching_set(root: str, videos: int, seed: int) -> int:
    """The validation subset of switching videos; returns the number of true segments."""
    import numpy as np

    from tests.motion_dataset import class_annotation, write_item
    from tests.videos import write_switching_video

    rng = np.random.default_rng(seed)
    subset = os.path.join(root, "validation")
    true_segments = 0
    for v in range(videos):
        labels = ["left", "right"] if v % 2 == 0 else ["right", "left"]
        actions = [labels[k % 2] for k in range(int(rng.integers(3, 6)))]
        parts, ranges, start = [], [], 0
        for k, label in enumerate(actions):
            length = int(rng.integers(20, 41))  # 4 to 8 s at 5 fps
            if k % 2 == 1:  # a pause inside the action
                before = int(rng.integers(6, length - 13))
                pause = int(rng.integers(5, 9))
                parts += [(DIRECTIONS[label], before), ((0, 0), pause), (DIRECTIONS[label], length - before - pause)]
            else:
                parts.append((DIRECTIONS[label], length))
            ranges.append((label, start, start + length - 1))
            start += length
        filename = f"/switching/video_{v:02d}.avi"
        annotations = [
            class_annotation(label, first, last, annotation_id=f"a{k}") for k, (label, first, last) in enumerate(ranges)
        ]
        video_path, _ = write_item(subset, filename, annotations, item_id=f"item-{v}", fps=5)
        write_switching_video(video_path, parts, fps=5, width=48, height=48, seed=seed + v)
        true_segments += len(ranges)
    return true_segments


def evaluate(data: str, weights: str, options: dict) -> dict:
    from adapter.cli.parser import main as movinet

    report = os.path.join(data, "report.json")
    argv = ["evaluate", data, "--weights", weights, "--output", report]
    argv += set_options({**SMALL, "temporal_annotations": "true", **options})
    with contextlib.redirect_stdout(io.StringIO()):
        code = movinet(argv)
    if code != 0:
        raise RuntimeError(f"movinet evaluate failed ({code}) for {options}")
    with open(report) as file:
        return json.load(file)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--weights", help="a model from an earlier run (skips training)")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(f"load average before: {load_average()}", flush=True)
    root = tempfile.mkdtemp(prefix="bench-temporal-")
    weights = args.weights or train_model(root, args.epochs, args.seed)
    data = os.path.join(root, "switching")
    true_segments = write_switching_set(data, args.videos, args.seed)
    print(
        f"{args.videos} videos, {true_segments} true segments ({true_segments / args.videos:.1f} per video)",
        flush=True,
    )
    print("| setting | frame accuracy | segment F1@0.5 | edit | predicted segments per video |")
    print("| --- | --- | --- | --- | --- |")
    for name, options in SETTINGS:
        segments = evaluate(data, weights, options)["segments"]
        per_video = segments_per_video(segments)
        print(
            f"| {name} | {segments['frame_accuracy']:.3f} | {segments['f1_at_50']:.3f} | {segments['edit']:.3f} "
            f"| {per_video / args.videos:.1f} |",
            flush=True,
        )
    print(f"load average after: {load_average()}", flush=True)
    return 0


def segments_per_video(segments: dict) -> int:
    """Predicted segments over all videos: TP + FP of every class."""
    return sum(entry["tp"] + entry["fp"] for entry in segments["per_class"].values())


if __name__ == "__main__":
    raise SystemExit(main())
