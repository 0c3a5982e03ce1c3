"""Model resolution and loading: fine-tuned artifacts written by save(), or the pretrained hub model.

A model folder written by save_finetuned() holds the weights file and movinet.json, which
records everything load needs (variant, labels, preprocessing settings).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Sequence

import tf_keras

from adapter import network
from adapter.config import ConfigError, MovinetConfig
from adapter.errors import UsageError
from adapter.hub import resolve_saved_model
from adapter.presets import kinetics_600_labels

logger = logging.getLogger(__name__)

METADATA_FILENAME = "movinet.json"
DEFAULT_WEIGHTS_FILENAME = "movinet_finetuned.weights.h5"


class FineTunedFolderError(UsageError, ValueError):
    """A folder that claims fine-tuned weights (movinet.json) but cannot provide them."""


@dataclasses.dataclass(frozen=True)
class FineTunedInfo:
    """What movinet.json records about fine-tuned weights."""

    model_id: str
    model_mode: str
    labels: list[str]
    imgz: int
    n_frames: int
    fps: float
    weights_filename: str = DEFAULT_WEIGHTS_FILENAME


class LoadedModel:
    """A resolved model: its labels, where its weights are, and the Keras network.

    Given build instead of model, the network is built and restored on first use of .model,
    so a runtime that needs none (TF Lite from a cached conversion) starts without it.
    """

    def __init__(self, model, labels, source: str, finetuned: FineTunedInfo | None = None, build=None):
        self._model, self._build = model, build
        self.labels: list[str] = labels
        self.source = source  # where the weights came from, for logs and errors
        self.finetuned = finetuned

    @property
    def model(self) -> tf_keras.Model:
        if self._model is None and self._build is not None:
            self._model, self._build = self._build(), None
        return self._model


def save_finetuned(model: tf_keras.Model, local_path: str, info: FineTunedInfo) -> str:
    os.makedirs(local_path, exist_ok=True)
    weights_path = os.path.join(local_path, info.weights_filename)
    model.save_weights(weights_path)
    with open(os.path.join(local_path, METADATA_FILENAME), "w") as file:
        json.dump(dataclasses.asdict(info), file, indent=2)
    return weights_path


def find_finetuned(local_path: str | None) -> FineTunedInfo | None:
    """The fine-tuned weights' description in local_path, or None when it holds none."""
    if not local_path:
        return None
    metadata_path = os.path.join(local_path, METADATA_FILENAME)
    if not os.path.isfile(metadata_path):
        return None
    try:
        with open(metadata_path) as file:
            info = FineTunedInfo(**json.load(file))
    except (ValueError, TypeError) as err:  # not JSON, or not the fields save() writes
        raise FineTunedFolderError(f"{metadata_path} is not a movinet.json written by save(): {err}") from err
    if not os.path.isfile(os.path.join(local_path, info.weights_filename)):
        raise FineTunedFolderError(
            f"{metadata_path} names weights {info.weights_filename!r}, which are not in {local_path}"
        )
    return info


def load_model(config: MovinetConfig, local_path: str | None, labels: Sequence[str] | None = None) -> LoadedModel:
    """Fine-tuned weights from local_path when it holds them, else the pretrained hub model.

    labels: the model entity's label map, used for the pretrained model when it names the
    600 Kinetics classes (so renamed labels survive); otherwise the Kinetics names apply.
    """
    info = find_finetuned(local_path)
    if info is not None:
        return load_finetuned(config, local_path, info)
    saved_model_dir = resolve_saved_model(config)

    def build():
        return network.load_pretrained(config.model_id, config.model_mode, saved_model_dir, num_classes=600)

    if labels is not None and len(labels) == 600:
        labels = list(labels)
    else:
        if labels:
            logger.warning(
                "The model's label map has %d labels, but these are the pretrained Kinetics-600 weights "
                "(no fine-tuned weights in %s): predictions use the 600 Kinetics label names until the "
                "model is fine-tuned",
                len(labels),
                local_path,
            )
        labels = kinetics_600_labels()
    return LoadedModel(None, labels, source=saved_model_dir, build=build)


def load_finetuned(config: MovinetConfig, local_path: str, info: FineTunedInfo) -> LoadedModel:
    if config.model_mode != info.model_mode or config.model_id != info.model_id:
        raise ConfigError(
            f"The fine-tuned weights in {local_path} are movinet-{info.model_id}-{info.model_mode}, but the "
            f"configuration asks for model_id={config.model_id!r}, model_mode={config.model_mode!r}; "
            f"set them to {info.model_id!r} and {info.model_mode!r}"
        )

    def build():
        model = network.build_classifier(info.model_id, info.model_mode, num_classes=len(info.labels))
        model.load_weights(os.path.join(local_path, info.weights_filename))
        logger.info("Restored fine-tuned %s-%s weights from %s", info.model_id, info.model_mode, local_path)
        return model

    return LoadedModel(None, list(info.labels), source=local_path, finetuned=info, build=build)
