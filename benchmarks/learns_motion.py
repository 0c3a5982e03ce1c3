"""Proof that fine-tuning learns: motion-only classes, trained through the adapter's own train().

Run by hand from the repository root:

    .venv/bin/python benchmarks/learns_motion.py [--classes 2] [--seeds 0 1 2] [--epochs 30]

For each seed it writes a dataset with tests/motion_dataset.py (the same square on the
same background, moving left / right (/ up / down): no single frame tells the classes
apart), then runs MovinetAdapter.train() on it, exactly as the platform does (samples,
tf.data, fit, best epoch kept and reloaded), and prints the validation accuracy per epoch,
the kept epoch's accuracy, the first epoch reaching --target, and the times.

Training starts from random initialisation (pretrained: false): real pretrained weights
cannot be downloaded here, and the hub exports the tests use are random too. The default
test run trains the two-class case through the command line
(tests/training/test_fit.py::test_the_command_line_trains_a_model_that_learns_motion_no_single_frame_shows).
docs/benchmarks.md holds the figures of the latest run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--classes", type=int, choices=(2, 4), default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-per-class", type=int, default=32)
    parser.add_argument("--validation-per-class", type=int, default=8)
    parser.add_argument("--imgz", type=int, default=32)
    parser.add_argument("--n-frames", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--size", type=int, default=48, help="video width and height")
    parser.add_argument("--speed", type=int, default=6, help="pixels per frame")
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--verbose", action="store_true", help="show the training log")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    from adapter.movinet_adapter import MovinetAdapter
    from adapter.platform.offline_model import offline_model
    from tests.motion_dataset import DIRECTIONS, write_motion_dataset

    # After importing the SDK, which sets its own logger to DEBUG.
    logging.getLogger("dtlpy").setLevel(logging.WARNING)

    classes = list(DIRECTIONS)[: args.classes]
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="movinet-learns-") as root:
            dataset = write_motion_dataset(
                root,
                classes=classes,
                train_per_class=args.train_per_class,
                validation_per_class=args.validation_per_class,
                frames=max(16, 2 * args.n_frames),
                fps=5,
                width=args.size,
                height=args.size,
                speed=args.speed,
                seed=seed,
            )
            configuration = dict(
                model_id="a0",
                model_mode="base",
                imgz=args.imgz,
                n_frames=args.n_frames,
                batch_size=args.batch_size,
                num_epochs=args.epochs,
                learning_rate=args.learning_rate,
                fps=5,
                pretrained=False,
                id_to_label_map=dict(enumerate(dataset.labels)),
            )
            adapter = MovinetAdapter()
            adapter.model_entity = offline_model({"name": "learns-motion", "configuration": configuration})
            started = time.perf_counter()
            result = adapter.train(root, os.path.join(root, "output"), seed=seed)
            seconds = time.perf_counter() - started
        accuracy = result.history["val_accuracy"]
        reached = next((epoch + 1 for epoch, value in enumerate(accuracy) if value >= args.target), None)
        rows.append((seed, result.best_val_accuracy, result.best_epoch + 1, reached, seconds))
        print(f"seed {seed}: validation accuracy per epoch {[round(a, 3) for a in accuracy]}", flush=True)

    samples = args.classes * args.train_per_class + 2
    print(
        f"\n{args.classes} classes, {samples} training samples, {args.classes * args.validation_per_class} validation; "
        f"clips {args.n_frames} x {args.imgz}px, batch {args.batch_size}, lr {args.learning_rate}, {args.epochs} epochs, "
        "random initialisation"
    )
    print(
        f"{'seed':>4} {'kept val acc':>12} {'kept epoch':>10} {'first >= ' + format(args.target, 'g'):>12} {'total s':>8} {'s/epoch':>8}"
    )
    for seed, best, best_epoch, reached, seconds in rows:
        print(
            f"{seed:>4} {best:12.3f} {best_epoch:>10} {str(reached or '-'):>12} {seconds:8.1f} {seconds / args.epochs:8.1f}"
        )
    return 0 if all(best >= args.target for _, best, _, _, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
