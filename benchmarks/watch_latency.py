"""Latency of watch: from a frame's arrival to its result, against the model step itself.

Run by hand from the repository root (takes about --seconds plus the model load):

    .venv/bin/python benchmarks/watch_latency.py [--seconds 60] [--model movinet-a0-stream] [--set imgz=172]

A generated stream (320x240, 10 fps, H.264 in MPEG-TS) is encoded in real time, one frame
every 1/10 s, into a pipe that watch's own code reads (LiveSource and watch_periods, in
this process, with a line per kept frame). For every kept frame it records when the
frame's bytes were written (arrival), when the model step for it started and ended, and
when its line was ready. The target: latency (arrival -> line) within one model step of
the step's own time, i.e. nothing waits in between but the decoding of that frame.

The sender writes each frame's PES packet with its length (FFmpeg's mpegts muxer option
omit_video_pes_length=0), so the demuxer can hand the frame on without waiting for the
next one; live encoders that omit it cost one frame interval more.
"""

from __future__ import annotations

import argparse
import fractions
import os
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, FPS = 320, 240, 10
WARM_UP_SECONDS = 5  # the first steps trace the model; they are left out of the figures


def feed_in_real_time(write_fd: int, seconds: int, arrivals: dict) -> None:
    """Encode the moving-square stream into the pipe, one frame every 1/FPS s; arrivals[i] = when frame i was written."""
    import av

    rng = np.random.default_rng(0)
    background = rng.integers(0, 60, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    side = HEIGHT // 4
    with open(write_fd, "wb", buffering=0) as pipe:
        with av.open(pipe, "w", format="mpegts", options={"omit_video_pes_length": "0"}, buffer_size=188) as container:
            stream = container.add_stream("libx264", rate=fractions.Fraction(FPS))
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
            start = time.monotonic()
            for i in range(seconds * FPS):
                time.sleep(max(0.0, start + i / FPS - time.monotonic()))
                image = background.copy()
                x, y = (3 * i) % (WIDTH - side), (2 * i) % (HEIGHT - side)
                image[y : y + side, x : x + side] = 230
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
                arrivals[i] = time.monotonic()
            container.mux(stream.encode(None))


class TimedClassifier:
    """Wraps a stream classifier's segments() to time each model step."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.steps: dict[int, tuple[float, float]] = {}  # slot -> (step start, step end)

    def segments(self, windows):
        started = {}

        def timed_windows():
            for window in windows:
                started[window.first_index] = time.monotonic()
                yield window

        for segment, so_far in self.classifier.segments(timed_windows()):
            self.steps[segment.first_index] = (started[segment.first_index], time.monotonic())
            yield segment, so_far


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--model", default="movinet-a0-stream")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    if "TFHUB_CACHE_DIR" not in os.environ:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from predict_pipeline import _ensure_hub_models

        _ensure_hub_models(None)
    from adapter.cli.options import offline_adapter, parse_set
    from adapter.cli.watch import warm_up, watch_periods
    from adapter.core.presets import preset_model
    from adapter.video.live import LiveSource
    from adapter.video.preprocessing import preprocess_frame

    adapter = offline_adapter(preset_model(args.model), parse_set(args.set))
    adapter.load(None)
    config = adapter.config
    warm_up(adapter.classifier, config.imgz)  # as watch does before it opens the source
    read_fd, write_fd = os.pipe()
    arrivals: dict[int, float] = {}
    feeder = threading.Thread(target=feed_in_real_time, args=(write_fd, args.seconds, arrivals), daemon=True)
    source = LiveSource(
        f"pipe:{read_fd}", config.frame_rate, transform=lambda image: preprocess_frame(image, config.imgz)
    )
    timed = TimedClassifier(adapter.classifier)
    every = 1 / config.frame_rate  # a line per kept frame
    feeder.start()
    rows = []
    for period in watch_periods(
        source, timed, adapter.loaded.labels, fps=config.frame_rate, every=every, top_k=config.top_k
    ):
        ready = time.monotonic()
        slot = round(period.start * config.frame_rate)
        frame_index = round(period.start * FPS)
        if period.start >= WARM_UP_SECONDS and frame_index in arrivals and slot in timed.steps:
            step_start, step_end = timed.steps[slot]
            rows.append((ready - arrivals[frame_index], step_end - step_start, step_start - arrivals[frame_index]))
    feeder.join()
    os.close(read_fd)
    latency, step, before = (np.array(column) * 1000 for column in zip(*rows))
    print(
        f"{args.model} {' '.join(args.set) or '(preset configuration)'}: {len(rows)} frames after the first "
        f"{WARM_UP_SECONDS} s, {WIDTH}x{HEIGHT} {FPS} fps H.264 MPEG-TS through a pipe in real time\n"
    )
    print("| ms | median | 95th percentile | max |")
    print("| --- | --- | --- | --- |")
    for name, values in (
        ("arrival -> line (latency)", latency),
        ("model step", step),
        ("arrival -> step start (decode, preprocess, handover)", before),
    ):
        print(f"| {name} | {np.median(values):.1f} | {np.percentile(values, 95):.1f} | {values.max():.1f} |")


if __name__ == "__main__":
    main()
