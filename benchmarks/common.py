"""Shared by the benchmarks: a realistic 720p test video and the process's memory readings."""

from __future__ import annotations

import fractions

import numpy as np


def write_benchmark_video(
    path: str, seconds: float, codec: str, width: int = 1280, height: int = 720, fps: int = 30
) -> int:
    """Encode a panning-texture video with PyAV; returns the number of frames written."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    # A texture larger than the frame, panned diagonally: full-frame motion.
    texture = rng.integers(0, 256, size=(height + 256, width + 512, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), sigmaX=1.5)
    # Sensor-like noise, cycled with a period longer than the encoder's reference
    # window, keeps the bitrate near real footage (a few Mbit/s) instead of the
    # near-free pure pan.
    noise = [rng.integers(-16, 17, size=(height, width, 3), dtype=np.int16) for _ in range(7)]
    frames = int(round(seconds * fps))
    side = height // 5
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(frames):
            x, y = (2 * i) % 512, i % 256
            image = texture[y : y + height, x : x + width] + noise[i % len(noise)]
            image = np.clip(image, 0, 255).astype(np.uint8)
            sx, sy = (7 * i) % (width - side), (3 * i) % (height - side)
            image[sy : sy + side, sx : sx + side] = 240
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return frames


def memory_kib() -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak since the last reset_peak_rss) in KiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
