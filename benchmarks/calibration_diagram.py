"""The reliability diagram of docs/multi-label-and-calibration.md, from a generated set.

Run by hand from the repository root:

    .venv/bin/python benchmarks/calibration_diagram.py [--epochs 12] [--output docs/reliability_diagram.png]

Writes a motion dataset with tests/motion_dataset.py (two classes, a square moving left or
right), fine-tunes movinet-a0-base on it from random initialisation through the command line
(`train`, calibrate on: one temperature fitted on the validation clips), then runs `evaluate`
on a held-out subset written with another seed, and copies evaluate's reliability diagram
(before and after the temperature, 15 bins) to --output. It prints the temperature and the
expected calibration error before and after, which the doc quotes. The set is generated and
small: the picture shows what the report looks like, not how calibrated real models are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train-per-class", type=int, default=24)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "reliability_diagram.png"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import tf_keras

    from adapter.cli import parser as cli
    from tests.conftest import set_options
    from tests.motion_dataset import write_motion_dataset

    small = set_options(imgz=32, n_frames=4, batch_size=4, fps=5, runtime="tensorflow")
    with tempfile.TemporaryDirectory(prefix="calibration-diagram-") as folder:
        common = dict(frames=16, width=48, height=48, speed=6, two_range_video=False)
        data = write_motion_dataset(
            os.path.join(folder, "data"), train_per_class=args.train_per_class, validation_per_class=8, **common
        )
        held_out = write_motion_dataset(
            os.path.join(folder, "held-out"),
            train_per_class=1,
            validation_per_class=args.test_per_class,
            seed=500,
            **common,
        )
        weights = os.path.join(folder, "weights")
        training = set_options(num_epochs=args.epochs, learning_rate=0.003, pretrained="false")
        tf_keras.utils.set_random_seed(0)
        if cli.main(["train", data.root, "--output", weights, *small, *training]) != 0:
            return 1
        report_path = os.path.join(folder, "evaluation.json")
        cli.main(
            ["evaluate", held_out.root, "--subset", "validation", "--weights", weights, "--output", report_path, *small]
        )
        with open(report_path) as file:
            report = json.load(file)
        shutil.copyfile(os.path.splitext(report_path)[0] + "_reliability.png", args.output)
    calibration = report["calibration"]
    print(
        f"held-out videos {report['videos']}, top-1 accuracy {report['top1_accuracy']:.3f}, "
        f"temperature {calibration['temperature']:.4g}, ECE (15 bins) {calibration['ece_before']:.4f} before, "
        f"{calibration['ece_after']:.4f} after; diagram in {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
