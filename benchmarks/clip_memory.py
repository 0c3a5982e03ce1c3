"""Peak memory of one base clip through the network, per pixel of the clip: the basis of imgz's and n_frames' bounds.

Run by hand from the repository root, one variant per process (each run builds the network):

    .venv/bin/python benchmarks/clip_memory.py a0 448 16
    .venv/bin/python benchmarks/clip_memory.py a5 320 8

The network (random weights: memory does not depend on their values) runs once on a tiny
clip, so its variables and TensorFlow's kernels are in memory; the peak resident memory is
then reset and one clip of n_frames x imgz x imgz runs. The peak's growth divided by the
clip's pixels is the activation memory per pixel that adapter/core/config.py's
ACTIVATION_BYTES_PER_PIXEL must cover (docs/data-safety.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_id")
    parser.add_argument("imgz", type=int)
    parser.add_argument("n_frames", type=int)
    args = parser.parse_args()

    import numpy as np

    from adapter.model import network
    from benchmarks.common import load_average, memory_kib, reset_peak_rss

    model = network.build_classifier(args.model_id, "base", num_classes=600)
    model(np.zeros((1, 2, 64, 64, 3), np.float32), training=False)
    clip = np.random.default_rng(0).random((1, args.n_frames, args.imgz, args.imgz, 3), dtype=np.float32)
    reset_peak_rss()
    before = memory_kib()["VmHWM"]
    model(clip, training=False)
    growth = (memory_kib()["VmHWM"] - before) * 1024
    pixels = args.n_frames * args.imgz * args.imgz
    load = load_average()
    print(
        json.dumps(
            dict(
                model=args.model_id,
                imgz=args.imgz,
                n_frames=args.n_frames,
                peak_growth_mib=round(growth / 2**20, 1),
                bytes_per_pixel=round(growth / pixels, 1),
                loadavg=load,
            )
        )
    )


if __name__ == "__main__":
    main()
