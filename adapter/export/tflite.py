"""TF Lite export: the loaded model (pretrained or fine-tuned) -> a .tflite file for the edge.

Stream models become the tflite runtime's one-frame step model: call it once per frame
(1 x 1 x imgz x imgz x 3, RGB in [0, 1]), feed back the states it returned, and start from zeros;
its "logits" after a frame classify everything seen so far. A float stream export is the
runtime's own conversion, taken from (or added to) its cache beside the model. Base models
become a fixed-length clip model (1 x n_frames x imgz x imgz x 3 -> logits).

Quantization: "none" (float32), "float16" (float16 weights, half the file) or "int8"
(integer kernels, calibrated on frames or clips of the user's videos). Inputs and outputs
stay float32, so the same calling code runs every file.

The label map and the input settings are written beside the model as FILE.json, since a
.tflite file has no place for them that every runtime reads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from adapter.core.config import MovinetConfig
from adapter.core.errors import UsageError
from adapter.model.loading import LoadedModel
from adapter.runtime.conversion import IMAGE_INPUT, clip_function, convert, stream_step_function
from adapter.video.clips import base_clips
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoError, VideoReader

logger = logging.getLogger(__name__)


# Representative inputs drawn for int8 calibration (frames for stream, clips for base).
CALIBRATION_SAMPLES = 48


class CalibrationError(UsageError):
    """int8 export without usable calibration videos."""


def video_frames(paths: Sequence[str], config: MovinetConfig) -> Iterator[Iterator[tuple[int, np.ndarray]]]:
    """For each readable video, its preprocessed frames as (index, frame); unreadable ones are logged and skipped.

    Args:
        paths: video files.
        config: gives the frame rate and size.

    Returns:
        An iterator over the videos, each an iterator of (source frame index, frame).
    """
    for path in paths:
        try:
            reader = VideoReader(path, fps=config.frame_rate, name=path, shorter_side=config.imgz)
        except VideoError as err:
            logger.warning("Calibration skips %s", err)
            continue
        yield ((frame.index, preprocess_frame(frame.image, config.imgz)) for frame in reader)


def stream_calibration(model, config, paths, initial_states) -> Iterator[dict[str, np.ndarray]]:
    """Representative inputs by name: every frame with the states the model really has there."""
    step = tf.function(lambda states, image: model({**states, "image": image}, training=False))
    yielded = 0
    for frames in video_frames(paths, config):
        states = {name: tf.constant(value) for name, value in initial_states.items()}
        for _, frame in frames:
            image = frame[None, None].astype(np.float32)
            yield {IMAGE_INPUT: image, **{name: value.numpy() for name, value in states.items()}}
            yielded += 1
            if yielded >= CALIBRATION_SAMPLES:
                return
            _, states = step(states, tf.constant(image))


def clip_calibration(config, paths) -> Iterator[dict[str, np.ndarray]]:
    """Representative inputs by name: the clips the adapter would classify in each video."""
    yielded = 0
    for frames in video_frames(paths, config):
        for clip in base_clips(frames, config.n_frames):
            yield {IMAGE_INPUT: clip.frames[None].astype(np.float32)}
            yielded += 1
            if yielded >= CALIBRATION_SAMPLES:
                return


def export_tflite(
    loaded: LoadedModel,
    config: MovinetConfig,
    output_path: str,
    quantize: str = "none",
    calibration_videos: Sequence[str] = (),
) -> dict:
    """Write loaded's model as a .tflite file and its description (labels, input) beside it.

    Args:
        loaded: the model load() resolved (pretrained or fine-tuned) with its labels.
        config: the configuration it was loaded with (mode, imgz, n_frames, fps).
        output_path: the .tflite file to write; FILE.json is written beside it.
        quantize: one of QUANTIZATIONS.
        calibration_videos: video files whose frames (stream) or clips (base) calibrate int8
            (required for int8).

    Returns:
        The description written to FILE.json.
    """
    if quantize == "int8" and not calibration_videos:
        raise CalibrationError(
            "int8 quantization needs calibration videos (calibration_videos is empty): videos like the ones to classify"
        )
    model = loaded.model
    if config.model_mode == "stream":
        function, initial_states = stream_step_function(model, config.imgz)
        image_shape = [1, 1, config.imgz, config.imgz, 3]

        def samples():
            return stream_calibration(model, config, calibration_videos, initial_states)

    else:
        function = clip_function(model, config.n_frames, config.imgz)
        image_shape = [1, config.n_frames, config.imgz, config.imgz, 3]

        def samples():
            return clip_calibration(config, calibration_videos)

    if quantize == "int8" and next(iter(samples()), None) is None:
        raise CalibrationError(f"none of the {len(calibration_videos)} calibration videos could be read")
    if config.model_mode == "stream" and quantize == "none":
        # The tflite runtime runs this same step model: share its cached conversion.
        from adapter.runtime.conversion import convert_stream
        from adapter.runtime.conversion_cache import cached_conversion

        flatbuffer, _ = cached_conversion(loaded, config, convert_stream)
    else:
        logger.info(
            "Converting movinet-%s-%s to TF Lite (%s); this takes seconds to minutes",
            config.model_id,
            config.model_mode,
            quantize,
        )
        flatbuffer = convert(function, model, quantize, samples if quantize == "int8" else None)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(output_path, "wb") as file:
        file.write(flatbuffer)
    description = {
        "model_id": config.model_id,
        "model_mode": config.model_mode,
        "quantize": quantize,
        "imgz": config.imgz,
        "fps": config.frame_rate,
        "inputs": {IMAGE_INPUT: image_shape},
        "source": loaded.source,
        "labels": list(loaded.labels),
    }
    if config.model_mode == "stream":
        description["states_start_at"] = "zeros"
    else:
        description["n_frames"] = config.n_frames
    with open(description_path(output_path), "w") as file:
        json.dump(description, file, indent=2)
    logger.info("Wrote %s (%.1f MiB) and %s", output_path, len(flatbuffer) / 2**20, description_path(output_path))
    return description


def description_path(tflite_path: str) -> str:
    """FILE.json beside FILE.tflite.

    Args:
        tflite_path: the model file's path.

    Returns:
        The description's path.
    """
    return os.path.splitext(tflite_path)[0] + ".json"
