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

import logging
import os
from collections.abc import Sequence

from adapter.core.config import MovinetConfig
from adapter.core.files import write_bytes, write_json
from adapter.model.loading import LoadedModel
from adapter.runtime.calibration import CalibrationError, clip_calibration, stream_calibration
from adapter.runtime.conversion import IMAGE_INPUT, clip_function, convert, stream_step_function

logger = logging.getLogger(__name__)


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

        flatbuffer, _ = cached_conversion(loaded, config.replace(precision="float32"), convert_stream)
    else:
        logger.info(
            "Converting %s to TF Lite (%s); this takes seconds to minutes",
            config.model_name,
            quantize,
        )
        flatbuffer = convert(function, model, quantize, samples if quantize == "int8" else None)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    # Each file atomically: a failed write never leaves a half model (or description) under its name.
    write_bytes(output_path, flatbuffer)
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
    write_json(description_path(output_path), description, indent=2)
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
