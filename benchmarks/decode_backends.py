"""Which decoder should adapter/video/reader.py use? Measure the real workload on each.

Run by hand from the repository root:

    .venv/bin/python benchmarks/decode_backends.py [--seconds 60] [--codec libx264] [--repeats 2]

It writes a 1280x720, 30 fps video of ``--seconds`` seconds into a temporary
directory (a noisy textured background panning under a moving square, so every
macroblock moves and costs bits, as in real footage; libx264 with its default
B-frames), then reads it with ``VideoReader`` at 5 fps through each decoder, each in
a fresh child process:

* ``cv2``: OpenCV VideoCapture (grab() every frame, retrieve() the kept ones);
* ``pyav-frame``: PyAV decoding every picture with frame threading (``thread_type="AUTO"``);
* ``pyav-slice``: PyAV decoding every picture with slice threading;
* ``pyav``: what adapter/video/decoders.py ships: threading picked from the stream's slices,
  and the H.264 pictures that are neither kept nor referenced left undecoded.

For each it reports the wall time (best of ``--repeats``), frames of the video per
second of reading, and peak RSS growth while decoding (peak resident memory reset
just before the read, from /proc/self/status). Kept frames are converted to BGR
ndarrays, as in the pipeline, and then dropped; a checksum of them must agree across
decoders.

docs/benchmarks.md holds the figures of the latest run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import memory_kib, reset_peak_rss, write_benchmark_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("cv2", "pyav-frame", "pyav-slice", "pyav")
TARGET_FPS = 5


def child(variant: str, path: str) -> None:
    """Runs in a fresh process: read ``path`` at TARGET_FPS with one decoder, print JSON."""
    sys.path.insert(0, REPO)
    import av  # noqa: F401
    import cv2  # noqa: F401  (imported before the baseline so both variants pay the same)

    from adapter.video import decoders
    from adapter.video import reader as video

    threading = {"pyav-frame": "AUTO", "pyav-slice": "SLICE"}
    if variant in threading:
        video.DECODERS[variant] = functools.partial(
            decoders.PyAVDecoder, thread_type=threading[variant], skip_unreferenced=False
        )

    reset_peak_rss()
    before = memory_kib()["VmRSS"]
    start = time.perf_counter()
    reader = video.VideoReader(path, fps=TARGET_FPS, _decoder=variant)
    kept = 0
    checksum = 0
    for frame in reader:
        kept += 1
        # The kept frame is a real BGR ndarray; a sample of its pixels tells decoders apart.
        checksum += int(frame.image[::4, ::4].sum(dtype=np.int64))
    elapsed = time.perf_counter() - start
    peak = memory_kib()["VmHWM"]
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "frames": reader.num_frames,
                "kept": kept,
                "checksum": checksum,
                "rss_growth_mib": (peak - before) / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="video length (default 60)")
    parser.add_argument("--codec", default="libx264", help="PyAV encoder for the test video (default libx264)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per decoder; the best time is reported")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.mp4")
        start = time.perf_counter()
        frames = write_benchmark_video(path, args.seconds, args.codec)
        print(
            f"wrote {frames} frames of 1280x720 @ 30 fps ({args.codec}, {os.path.getsize(path) / 2**20:.1f} MiB) "
            f"in {time.perf_counter() - start:.1f} s; reading at {TARGET_FPS} fps on {os.cpu_count()} CPUs"
        )
        results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:  # interleaved, so drift in machine load hits all alike
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child", variant, path],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[variant].append(json.loads(out.strip().splitlines()[-1]))

    baseline = min(r["seconds"] for r in results["cv2"])
    print(
        f"\n{'decoder':<12} {'best s':>8} {'all runs s':>18} {'video fps':>11} {'kept':>6} {'peak RSS +MiB':>14} {'time vs cv2':>12}"
    )
    for variant, runs in results.items():
        best = min(r["seconds"] for r in runs)
        every = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        rss = max(r["rss_growth_mib"] for r in runs)
        print(
            f"{variant:<12} {best:>8.2f} {every:>18} {runs[0]['frames'] / best:>11.0f} {runs[0]['kept']:>6} "
            f"{rss:>14.1f} {best / baseline:>11.2f}x"
        )
    counted = {(r["frames"], r["kept"]) for runs in results.values() for r in runs}
    pyav_checksums = {r["checksum"] for variant, runs in results.items() if variant != "cv2" for r in runs}
    if len(counted) != 1 or len(pyav_checksums) != 1:
        print(
            f"\nWARNING: decoders disagree: (frames, kept) {sorted(counted)}, PyAV checksums {sorted(pyav_checksums)}"
        )


if __name__ == "__main__":
    main()
