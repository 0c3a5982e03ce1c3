"""Does the training input pipeline keep up with the model? And what does freezing the backbone save?

Run by hand from the repository root:

    .venv/bin/python benchmarks/train_throughput.py [--videos 32] [--imgz 48] [--n-frames 8] [--batch-size 8]

It writes a motion dataset in prepare_data's layout (tests/motion_dataset.py) of
``--videos`` training videos, --width x --height at --source-fps for --seconds, and trains
movinet-a0-base (random initialisation: weights do not change the cost) on clips of
--n-frames frames resampled to 5 fps, in one process, measuring the same number of
training steps four ways (interleaved, best of --repeats), each after a warm-up that
compiles the model for that shape:

* ``pipeline, frame cache``: adapter.training.pipeline.make_dataset as train() runs it from its
  second epoch: tf.data, parallel map, prefetch, clips sliced from each training range
  decoded once into adapter.datasets.sample_clips.RangeCache (the first epoch fills it; the fill time
  is printed);
* ``pipeline, decoding every clip``: the same tf.data pipeline without the cache;
* ``in-memory``: the same clips, decoded beforehand, as tensors into model.fit: the
  speed the model alone allows. pipeline / in-memory time is the pipeline's overhead
  (target <= 1.1);
* ``naive``: a loop that decodes each batch's clips on one thread (read_clip, the same
  decoding and preprocessing), then calls train_on_batch.

Then one epoch over the whole training set (frame-cache pipeline, after a warm-up epoch)
with the backbone trained (full fine-tuning) and frozen (freeze_backbone: head only).

The a0 defaults from realistic input: ``--videos 8 --width 1280 --height 720 --source-fps 30
--seconds 20 --imgz 172 --n-frames 13 --batch-size 2 --steps 4 --repeats 2``. docs/benchmarks.md
holds the figures of the latest run.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--videos", type=int, default=32, help="training videos (half per class)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--source-fps", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--imgz", type=int, default=48)
    parser.add_argument("--n-frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="training steps measured per way")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs of each way")
    parser.add_argument("--skip-epochs", action="store_true", help="skip the full vs head-only epochs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from adapter.core.config import MovinetConfig
    from adapter.datasets.layout import load_subset
    from adapter.datasets.sample_clips import RangeCache
    from adapter.training.model import build_training_model, compile_for_training
    from adapter.training.pipeline import ClipLoader, make_dataset
    from tests.motion_dataset import write_motion_dataset

    labels = ["left", "right"]
    config = MovinetConfig.from_dict(
        dict(
            model_id="a0",
            model_mode="base",
            imgz=args.imgz,
            n_frames=args.n_frames,
            batch_size=args.batch_size,
            fps=5,
            pretrained=False,
            augment=True,
        )
    )
    steps, batch = args.steps, args.batch_size
    frames = int(round(args.seconds * args.source_fps))
    with tempfile.TemporaryDirectory(prefix="movinet-train-bench-") as root:
        started = time.perf_counter()
        write_motion_dataset(
            root,
            classes=labels,
            train_per_class=args.videos // 2,
            validation_per_class=1,
            frames=frames,
            fps=args.source_fps,
            width=args.width,
            height=args.height,
            speed=max(1, args.width // 40),
            containers=(".mp4",),
            two_range_video=False,
        )
        samples = load_subset(root, "train", labels).samples
        print(
            f"dataset: {len(samples)} videos of {args.width}x{args.height} at {args.source_fps:g} fps, {frames} frames "
            f"({time.perf_counter() - started:.1f} s to write); clips {args.n_frames} x {args.imgz}px at 5 fps, "
            f"batch {batch}; {os.cpu_count()} CPU cores",
            flush=True,
        )
        if len(samples) < batch:
            raise SystemExit(f"need at least --batch-size ({batch}) videos; got {len(samples)}")

        model = build_training_model(config, labels, None)
        compile_for_training(model, config)
        pipeline = make_dataset(samples, config, training=True, batch_size=batch, seed=0)
        range_cache = RangeCache(os.path.join(root, "frame-cache"), imgz=config.imgz, fps=config.frame_rate)
        cached_pipeline = make_dataset(samples, config, training=True, batch_size=batch, seed=0, cache=range_cache)
        loader = ClipLoader(samples, config, training=True)
        rng = np.random.default_rng(0)

        def naive_steps(count):
            for _ in range(count):
                decoded = [loader.clip(int(i), int(rng.integers(2**31))) for i in rng.permutation(len(samples))[:batch]]
                model.train_on_batch(np.stack([f for f, _ in decoded]), np.array([l for _, l in decoded], np.int32))

        # The first step traces and XLA-compiles the model for this batch shape.
        started = time.perf_counter()
        model.fit(pipeline.take(1), epochs=1, verbose=0)
        print(f"first step (trace + compile): {time.perf_counter() - started:.1f} s", flush=True)

        # What train() does in its first epoch: decode every training range once into the cache.
        started = time.perf_counter()
        for _ in cached_pipeline:
            pass
        fill_seconds = time.perf_counter() - started
        print(
            f"frame cache: filled in {fill_seconds:.1f} s ({len(samples) / fill_seconds:.1f} ranges/s, input only), "
            f"{range_cache.size_bytes() / 2**20:.1f} MiB",
            flush=True,
        )

        clips, targets = [], []
        for batch_clips, batch_labels in pipeline.repeat().take(steps):
            clips.append(batch_clips.numpy())
            targets.append(batch_labels.numpy())
        in_memory = tf.data.Dataset.from_tensor_slices((np.concatenate(clips), np.concatenate(targets)))
        in_memory = in_memory.batch(batch, drop_remainder=True)  # the pipeline's static batch shape: no retrace

        ways = {
            "pipeline, frame cache (train() from epoch 2)": lambda: model.fit(
                cached_pipeline.repeat().take(steps), verbose=0
            ),
            "pipeline, decoding every clip": lambda: model.fit(pipeline.repeat().take(steps), verbose=0),
            "in-memory tensors (model alone)": lambda: model.fit(in_memory, verbose=0),
            "naive (decode in the loop, one thread)": lambda: naive_steps(steps),
        }
        model.fit(in_memory.take(1), verbose=0)  # warm each way's own function up
        naive_steps(1)
        results = {name: float("inf") for name in ways}
        for _ in range(args.repeats):  # interleaved, best of: the machine is shared
            for name, run in ways.items():
                started = time.perf_counter()
                run()
                results[name] = min(results[name], time.perf_counter() - started)

        decode_only = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            for _ in range(steps * batch):
                loader.clip(int(rng.integers(len(samples))), int(rng.integers(2**31)))
            decode_only = min(decode_only, time.perf_counter() - started)

        baseline = results["in-memory tensors (model alone)"]
        print(f"\n{steps} steps of {batch} clips, best of {args.repeats}:")
        print(f"{'input':<48} {'s':>7} {'clips/s':>8} {'vs in-memory':>13}")
        for name, seconds in results.items():
            print(f"{name:<48} {seconds:7.2f} {steps * batch / seconds:8.2f} {seconds / baseline:12.2f}x")
        print(
            f"{'(decoding alone, one thread, no training)':<48} {decode_only:7.2f} {steps * batch / decode_only:8.2f}"
        )

        if args.skip_epochs:
            return 0
        print(
            f"\nOne epoch of {len(samples) // batch} steps (frame-cache pipeline), after a warm-up epoch, best of {args.repeats}:"
        )
        for frozen in (False, True):
            epoch_model = build_training_model(config.replace(freeze_backbone=frozen), labels, None)
            compile_for_training(epoch_model, config)
            epoch_model.fit(cached_pipeline, epochs=1, verbose=0)  # compile
            seconds = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                epoch_model.fit(cached_pipeline, epochs=1, verbose=0)
                seconds = min(seconds, time.perf_counter() - started)
            name = "head only (freeze_backbone: true)" if frozen else "full fine-tuning"
            trainable = sum(int(np.prod(w.shape)) for w in epoch_model.trainable_weights)
            clips_per_epoch = len(samples) // batch * batch
            print(
                f"{name:<48} {seconds:7.2f} s/epoch {clips_per_epoch / seconds:8.2f} clips/s  {trainable:,} trainable parameters",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
