"""The one place that chooses how a model runs: TensorFlow or LiteRT (the "runtime" key).

make_classifier() returns the classifier prediction and embedding use; callers never pick a
runtime themselves. An unset runtime means tflite (faster per step and to start on CPU), except
base models where TensorFlow sees a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from adapter.core.config import MovinetConfig
from adapter.model.loading import LoadedModel
from adapter.runtime.conversion import convert_stream
from adapter.runtime.conversion_cache import cached_conversion
from adapter.runtime.litert_backend import TFLiteStreamClassifier
from adapter.runtime.results import Scoring
from adapter.runtime.tf_backend import BaseVideoClassifier, StreamVideoClassifier

logger = logging.getLogger(__name__)


def make_classifier(config: MovinetConfig, loaded: LoadedModel, converter: Callable | None = None):
    """The classifier prediction and embedding use, for the configuration's runtime.

    Args:
        config: the loaded configuration (model_mode, runtime, imgz, batch_size).
        loaded: the model load_model() resolved.
        converter: converts (loaded, config) to the step and head flatbuffers; the default
            converts with runtime.conversion (tests pass a spy).
    Returns:
        A BaseVideoClassifier, TFLiteBaseClassifier, StreamVideoClassifier or
        TFLiteStreamClassifier; all offer classify() and embed(), the stream ones segments() too.
        Its scoring is scoring_for(config, loaded).
    """
    classifier = _runtime_classifier(config, loaded, converter)
    classifier.scoring = scoring_for(config, loaded)
    return classifier


def scoring_for(config: MovinetConfig, loaded: LoadedModel) -> Scoring:
    """How the loaded weights' logits become reported probabilities and labels.

    Multi-label, the temperature and the thresholds are the weights' own (movinet.json, written by
    training); hub models have none, so they score with plain softmax as always. calibrate false
    drops the temperature; min_confidence comes from the configuration.

    Args:
        config: calibrate, min_confidence, multi_label (a mismatch with the weights is warned about).
        loaded: the model load_model() resolved.
    Returns:
        The Scoring.
    """
    info = loaded.finetuned
    multi_label = bool(info is not None and info.multi_label)
    if config.multi_label and not multi_label:
        logger.warning(
            "The configuration has multi_label true, but the weights from %s were not trained multi-label: "
            "predicting with softmax, as they were trained (multi_label applies to training)",
            loaded.source,
        )
    temperature = info.temperature if info is not None and config.calibrate else None
    thresholds = tuple(info.thresholds) if multi_label and info.thresholds else None
    return Scoring(multi_label, temperature, thresholds, float(config.min_confidence))


def _runtime_classifier(config: MovinetConfig, loaded: LoadedModel, converter: Callable | None):
    runtime = runtime_for(config)
    if config.model_mode == "base":
        if runtime == "tensorflow":
            return BaseVideoClassifier(loaded.model, config.batch_size)
        from adapter.runtime import conversion, litert_backend

        (clip,) = cached_conversion(loaded, config, converter or conversion.convert_base, (conversion.CLIP_FILE,))
        return litert_backend.TFLiteBaseClassifier(clip)
    if runtime == "tensorflow":
        return StreamVideoClassifier(loaded.model)
    step, head = cached_conversion(loaded, config, converter or convert_stream)
    return TFLiteStreamClassifier(step, head)


def runtime_for(config: MovinetConfig, gpus: list | None = None) -> str:
    """The runtime the model runs on here: the configured one, else tflite, except float32 base models on a GPU.

    Args:
        config: the configuration (runtime, model_mode).
        gpus: the visible GPUs (None: ask TensorFlow, only when it matters).
    Returns:
        "tensorflow" or "tflite".
    """
    if config.runtime is None and config.model_mode == "base" and config.precision == "float32":
        from adapter.model.layer_swaps import (
            temporal_taps_preferred,  # LiteRT runs on the CPU only: a GPU service keeps the base network on it (unmeasured there).
        )

        return "tflite" if temporal_taps_preferred(gpus) else "tensorflow"
    return config.resolved_runtime
