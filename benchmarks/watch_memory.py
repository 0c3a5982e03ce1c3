"""Memory of `movinet watch` over a long live stream: flat, whatever the stream's length.

Run by hand from the repository root (an hour of input takes a while on 2 cores):

    .venv/bin/python benchmarks/watch_memory.py [--minutes 60] [--model movinet-a0-stream] [--set imgz=172]

A generated stream (a square moving over a textured background, 320x240 at 10 fps,
H.264 in MPEG-TS, as a camera or an encoder sends it) is encoded on the fly and piped
into `python -m adapter watch - --every 60` as fast as watch reads it, so the stream is
never written anywhere. At every line (one per minute of video) the watch process's
resident memory (VmRSS) and its peak so far (VmHWM) are read from /proc. The stream is
flat when the readings at the end match those after the first minutes.

Weights: a random-initialised export of the official architecture (memory does not depend
on the weight values); with TFHUB_CACHE_DIR unset the a0 exports of predict_pipeline.py
are used (made on first use).
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, FPS = 320, 240, 10


def feed_stream(pipe, seconds: int) -> None:
    """Encode `seconds` of the moving-square stream as MPEG-TS into pipe, then close it."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 60, size=(HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), sigmaX=1.0)
    side = HEIGHT // 4
    try:
        with av.open(pipe, "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=fractions.Fraction(FPS))
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
            for i in range(seconds * FPS):
                image = background.copy()
                x, y = (3 * i) % (WIDTH - side), (2 * i) % (HEIGHT - side)
                image[y : y + side, x : x + side] = 230
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            container.mux(stream.encode(None))
    except (BrokenPipeError, OSError) as err:
        print(f"feeding stopped: {err}", file=sys.stderr)
    finally:
        pipe.close()


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--model", default="movinet-a0-stream")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if "TFHUB_CACHE_DIR" not in os.environ:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from predict_pipeline import _ensure_hub_models

        _ensure_hub_models(None)
    command = [sys.executable, "-m", "adapter", "watch", "-", "--model", args.model, "--every", "60"]
    for value in args.set:
        command += ["--set", value]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    watch = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    feeder = threading.Thread(target=feed_stream, args=(watch.stdin, args.minutes * 60), daemon=True)
    feeder.start()
    rows = []
    for line in watch.stdout:
        period = json.loads(line)
        rss, peak = memory_mib(watch.pid)
        rows.append((period["end"] / 60, period["frames"], rss, peak, time.perf_counter() - start))
        print(
            f"video {rows[-1][0]:5.1f} min: RSS {rss:7.1f} MiB, peak {peak:7.1f} MiB, {rows[-1][4]:6.0f} s", flush=True
        )
    code = watch.wait()
    feeder.join()
    elapsed = time.perf_counter() - start
    print(
        f"\nwatch exited {code} after {elapsed:.0f} s for {args.minutes} min of video ({args.minutes * 60 / elapsed:.1f}x real time)"
    )
    settings = " ".join(f"--set {value}" for value in args.set) or "(preset configuration)"
    print(f"{args.model} {settings}, {WIDTH}x{HEIGHT} {FPS} fps H.264 MPEG-TS on stdin\n")
    print("| video time | RSS | peak RSS so far |")
    print("| --- | --- | --- |")
    shown = {1, 2, 5} | set(range(10, args.minutes + 1, 10))
    for minutes, _, rss, peak, _ in rows:
        if round(minutes) in shown:
            print(f"| {minutes:.0f} min | {rss:.0f} MiB | {peak:.0f} MiB |")


if __name__ == "__main__":
    main()
