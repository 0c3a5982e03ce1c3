"""Proof that a pretrained start transfers: fine-tuning from `movinet train` weights beats random initialisation.

Run by hand from the repository root:

    .venv/bin/python benchmarks/transfer.py [--seeds 0 1 2] [--per-class 6] [--epochs 15]

1. Pretraining: `movinet train` (pretrained=false: random initialisation) on one synthetic
   motion task: a square moving left / right / up / down (tests/motion_dataset.py's videos;
   no single frame tells the classes apart).
2. Fine-tuning, per seed, on a different motion task with few samples per class: the same
   square moving along the four diagonals. Two runs on the same samples and validation set,
   with the same configuration and budget (epochs, batch, learning rate, seed): one
   `movinet train --weights PRETRAINED` (backbone and head projection kept, new class
   layer), one `movinet train --set pretrained=false`.

Prints the validation accuracy of the kept epoch and of the last epoch of each run; exits 1
unless the pretrained start wins (kept epoch) on every seed. Commands run in this process
(cli.main) so that the seed can be set before each, as the command line takes none.
docs/benchmarks.md holds the figures of the latest run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRETRAIN_TASK = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
FINE_TUNE_TASK = {"up_left": (-1, -1), "up_right": (1, -1), "down_left": (-1, 1), "down_right": (1, 1)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pretrain-per-class", type=int, default=32)
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=6, help="fine-tuning samples per class")
    parser.add_argument("--validation-per-class", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs (both starts)")
    parser.add_argument("--imgz", type=int, default=32)
    parser.add_argument("--n-frames", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--size", type=int, default=48, help="video width and height")
    parser.add_argument("--speed", type=int, default=6, help="pixels per frame along each moving axis")
    parser.add_argument("--verbose", action="store_true", help="show the training log")
    return parser.parse_args(argv)


def write_task(root: str, classes: dict, per_class: int, validation_per_class: int, args, seed: int) -> None:
    """Train and validation subsets (prepare_data's layout) of squares moving as classes says."""
    from tests.motion_dataset import CONTAINERS, class_annotation, write_item
    from tests.videos import write_video

    frames, ids = 16, 0
    for subset, count, subset_seed in (("train", per_class, seed), ("validation", validation_per_class, seed + 10_000)):
        for k in range(count):
            for number, (label, (dx, dy)) in enumerate(classes.items()):
                ids += 1
                filename = f"/{label}/{label}_{k:03d}{CONTAINERS[(k + number) % len(CONTAINERS)]}"
                video_path, _ = write_item(
                    os.path.join(root, subset),
                    filename,
                    [class_annotation(label, 0, frames - 1)],
                    item_id=f"item-{ids}",
                    fps=5,
                )
                # Video k of every class shares its seed: the same first frame, only the motion differs.
                write_video(
                    video_path,
                    frames=frames,
                    fps=5,
                    width=args.size,
                    height=args.size,
                    direction=(dx * args.speed, dy * args.speed),
                    seed=subset_seed + k,
                )


def train(data: str, output: str, options: list[str], seed: int) -> dict:
    """`movinet train DATA --output OUTPUT *options` with the random seed set; its training history."""
    import tf_keras

    from adapter.cli import parser as cli

    tf_keras.utils.set_random_seed(seed)
    code = cli.main(["train", data, "--output", output, *options])
    if code != 0:
        raise RuntimeError(f"movinet train {' '.join(options)} exited {code}")
    with open(os.path.join(output, "training_history.json")) as file:
        return json.load(file)


def main(argv=None) -> int:
    args = parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    # Before cli.main's basicConfig, which then leaves the level alone.
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    small = [
        "--set",
        f"imgz={args.imgz}",
        "--set",
        f"n_frames={args.n_frames}",
        "--set",
        f"batch_size={args.batch_size}",
        "--set",
        "fps=5",
        "--set",
        f"learning_rate={args.learning_rate}",
    ]
    import dtlpy  # noqa: F401

    logging.getLogger("dtlpy").setLevel(logging.WARNING)  # the SDK sets its logger to DEBUG on import

    rows = []
    with tempfile.TemporaryDirectory(prefix="movinet-transfer-") as root:
        pretrain_data, pretrained = os.path.join(root, "pretrain"), os.path.join(root, "pretrained")
        write_task(pretrain_data, PRETRAIN_TASK, args.pretrain_per_class, args.validation_per_class, args, seed=100)
        started = time.perf_counter()
        record = train(
            pretrain_data,
            pretrained,
            [*small, "--set", f"num_epochs={args.pretrain_epochs}", "--set", "pretrained=false"],
            seed=100,
        )
        pretrain_seconds = time.perf_counter() - started
        pretrain_accuracy = record["history"]["val_accuracy"][record["best_epoch"]]
        print(
            f"pretraining ({', '.join(PRETRAIN_TASK)}): kept validation accuracy {pretrain_accuracy:.3f} "
            f"in {pretrain_seconds:.0f} s",
            flush=True,
        )

        for seed in args.seeds:
            data = os.path.join(root, f"fine-tune-{seed}")
            write_task(data, FINE_TUNE_TASK, args.per_class, args.validation_per_class, args, seed=seed)
            budget = [*small, "--set", f"num_epochs={args.epochs}"]
            results = {}
            for start, options in (
                ("pretrained", [*budget, "--weights", pretrained]),
                ("random", [*budget, "--set", "pretrained=false"]),
            ):
                began = time.perf_counter()
                record = train(data, os.path.join(root, f"out-{seed}-{start}"), options, seed=seed)
                accuracy = record["history"]["val_accuracy"]
                results[start] = (accuracy[record["best_epoch"]], accuracy[-1], time.perf_counter() - began)
                print(
                    f"seed {seed} {start}: validation accuracy per epoch {[round(a, 3) for a in accuracy]}", flush=True
                )
            rows.append((seed, results))

    print(
        f"\nfine-tuning: {len(FINE_TUNE_TASK)} diagonal directions, {args.per_class} training samples per class, "
        f"{args.validation_per_class} validation per class; clips {args.n_frames} x {args.imgz}px, batch {args.batch_size}, "
        f"lr {args.learning_rate}, {args.epochs} epochs; pretrained on {len(PRETRAIN_TASK)} axis directions, "
        f"{args.pretrain_per_class} per class, {args.pretrain_epochs} epochs"
    )
    print(
        f"{'seed':>4} {'pretrained kept':>15} {'random kept':>11} {'pretrained last':>15} {'random last':>11} {'s (pre / rand)':>15}"
    )
    wins = 0
    for seed, results in rows:
        (p_kept, p_last, p_s), (r_kept, r_last, r_s) = results["pretrained"], results["random"]
        wins += p_kept > r_kept
        print(f"{seed:>4} {p_kept:15.3f} {r_kept:11.3f} {p_last:15.3f} {r_last:11.3f} {p_s:7.0f} / {r_s:5.0f}")
    print(f"pretrained start wins on {wins} of {len(rows)} seeds")
    return 0 if wins == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
