"""Shared by the benchmarks: a realistic 720p test video, trained-looking exports, memory and load readings."""

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


def time_parts(adapter, path: str) -> dict:
    """Decoding alone, then the model alone, for one video, as MovinetAdapter.predict does them.

    Decoding resizes while decoding (shorter_side) and preprocesses each kept frame, frames kept in
    memory; then the adapter's classifier (built by an earlier predict) runs on those frames'
    clips (base) or windows (stream).

    Args:
        adapter: a loaded MovinetAdapter that has predicted once.
        path: the video.

    Returns:
        {"decode_seconds", "model_seconds", "sampled_frames"}.
    """
    import time

    from adapter.video.clips import base_clips, stream_windows
    from adapter.video.preprocessing import preprocess_frame
    from adapter.video.reader import VideoReader

    config = adapter.config
    start = time.perf_counter()
    reader = VideoReader(path, fps=config.frame_rate, shorter_side=config.imgz)
    frames = [(frame.index, preprocess_frame(frame.image, config.imgz)) for frame in reader]
    decode_seconds = time.perf_counter() - start
    clips = list((base_clips if config.model_mode == "base" else stream_windows)(frames, config.n_frames))
    start = time.perf_counter()
    adapter._classifier.classify(clips)
    return {
        "decode_seconds": decode_seconds,
        "model_seconds": time.perf_counter() - start,
        "sampled_frames": len(frames),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them (recorded beside each timing)."""
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


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


def trained_looking(model, seed: int = 1) -> None:
    """Give random weights the shape trained ones have: no zero rezero scale, batch norms not identity.

    Speed depends on it for int8: a rezero scale of 0 (the initial value) lets the converter drop
    whole branches, which no trained model does.
    """
    rng = np.random.default_rng(seed)
    draws = {
        "scale:0": lambda shape: rng.uniform(0.2, 1.0, shape),
        "gamma:0": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta:0": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_mean:0": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_variance:0": lambda shape: rng.uniform(0.5, 2.0, shape),
    }
    for variable in model.variables:
        draw = draws.get(variable.name.split("/")[-1])
        if draw is not None:
            variable.assign(draw(variable.shape).astype(np.float32))


def trained_looking_hub_export(model_id: str, model_mode: str, folder: str) -> str:
    """A hub-format SavedModel of the variant with trained-looking random weights, made once.

    Built as `movinet export-hub --checkpoint` builds it, from a checkpoint of such weights, so the
    adapter loads it exactly as it loads a published handle.

    Args:
        model_id: a0..a5.
        model_mode: "base" or "stream".
        folder: where exports are kept between runs.

    Returns:
        The export's folder.
    """
    import os
    import shutil

    import tensorflow as tf

    from adapter.export.hub import export_hub_model
    from adapter.model.network import build_classifier

    target = os.path.join(folder, f"{model_id}-{model_mode}-trained-looking")
    if os.path.isfile(os.path.join(target, "saved_model.pb")):
        return target
    tf.keras.utils.set_random_seed(0)
    model = build_classifier(model_id, model_mode, num_classes=600, tap_convolutions=False)
    shape = [1, 1, 64, 64, 3]
    inputs = {"image": tf.zeros(shape)}
    if model_mode == "stream":
        inputs.update(model.init_states(tf.constant(shape)))
    model(inputs)
    trained_looking(model)
    model.compile()  # the export tool compiles before restoring: its optimizer variables must be in the checkpoint
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    checkpoint = tf.train.Checkpoint(model=model).save(os.path.join(partial + "-checkpoint", "ckpt"))
    export_hub_model(partial, model_id, model_mode, checkpoint_path=checkpoint)
    shutil.rmtree(partial + "-checkpoint", ignore_errors=True)
    os.rename(partial, target)
    return target
