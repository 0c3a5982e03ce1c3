"""int8 calibration: the representative inputs the converter measures value ranges on.

Stream models are calibrated on frames fed with the states the model really has at each frame
(a stream step sees its states grow over a video; zeros alone would calibrate them wrongly); base
models on the clips the adapter would classify. Both the tflite runtime (the `precision` and
`calibration_videos` keys) and the int8 export (export.tflite) draw them from here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np

from adapter.core.config import MovinetConfig
from adapter.core.errors import UsageError
from adapter.video.clips import base_clips
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoError, VideoReader

logger = logging.getLogger(__name__)

# Representative inputs drawn for int8 calibration (frames for stream, clips for base).
CALIBRATION_SAMPLES = 48

# The input the converted functions take (runtime.conversion.IMAGE_INPUT).
_IMAGE = "image"


class CalibrationError(UsageError):
    """int8 without usable calibration videos."""


def calibration_files(folder: str, key: str = "calibration_videos") -> list[str]:
    """The files under a calibration folder, sorted (unreadable ones are skipped later, with a warning).

    Args:
        folder: the folder of videos.
        key: how the caller names the setting, for the error.
    Returns:
        Their paths.
    Raises:
        CalibrationError: folder is not a folder, or holds no file.
    """
    if not os.path.isdir(folder):
        raise CalibrationError(f"{key} {folder!r} is not a folder")
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)
    if not files:
        raise CalibrationError(f"{key} {folder!r} holds no file: int8 needs videos like the ones to classify")
    return files


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
    """Representative inputs by name: every frame with the states the model really has there.

    Args:
        model: the stream MovinetClassifier.
        config: gives the frame rate and size.
        paths: the calibration videos.
        initial_states: the step's initial states by name (numpy arrays).
    Returns:
        Up to CALIBRATION_SAMPLES {input name: array} dicts.
    """
    import tensorflow as tf

    step = tf.function(lambda states, image: model({**states, "image": image}, training=False))
    yielded = 0
    for frames in video_frames(paths, config):
        states = {name: tf.constant(value) for name, value in initial_states.items()}
        for _, frame in frames:
            image = frame[None, None].astype(np.float32)
            yield {_IMAGE: image, **{name: value.numpy() for name, value in states.items()}}
            yielded += 1
            if yielded >= CALIBRATION_SAMPLES:
                return
            _, states = step(states, tf.constant(image))


def clip_calibration(config, paths) -> Iterator[dict[str, np.ndarray]]:
    """Representative inputs by name: the clips the adapter would classify in each video.

    Args:
        config: gives the frame rate, size and n_frames.
        paths: the calibration videos.
    Returns:
        Up to CALIBRATION_SAMPLES {input name: array} dicts.
    """
    yielded = 0
    for frames in video_frames(paths, config):
        for clip in base_clips(frames, config.n_frames):
            yield {_IMAGE: clip.frames[None].astype(np.float32)}
            yielded += 1
            if yielded >= CALIBRATION_SAMPLES:
                return
