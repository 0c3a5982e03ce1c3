"""Model resolution and loading: fine-tuned artifacts written by save(), or the pretrained hub model.

A model folder written by save_finetuned() holds the weights file and movinet.json, which
records everything load needs (variant, labels, preprocessing settings).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence

import tf_keras

from adapter.core.config import ConfigError, MovinetConfig
from adapter.core.errors import UsageError
from adapter.core.files import is_plain_filename, write_json
from adapter.core.presets import kinetics_600_labels
from adapter.core.variants import model_name
from adapter.model import network
from adapter.model.hub import kinetics_handle, resolve_saved_model

logger = logging.getLogger(__name__)

METADATA_FILENAME = "movinet.json"
DEFAULT_WEIGHTS_FILENAME = "movinet_finetuned.weights.h5"
# The label map of a SavedModel written by export-savedmodel: one label a line, by class index.
LABELS_ASSET = "labels.txt"


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
    # Written by training (adapter.training.fit); absent in older files, which then mean softmax, uncalibrated.
    multi_label: bool = False  # the head's classes are independent sigmoids
    temperature: float | None = None  # fitted on the validation logits; None: not calibrated
    thresholds: list[float] | None = None  # multi-label: each class's decision threshold


class LoadedModel:
    """A resolved model: its labels, where its weights are, and the Keras network.

    Given build instead of model, the network is built and restored on first use of .model,
    so a runtime that needs none (TF Lite from a cached conversion) starts without it.
    """

    def __init__(
        self,
        model,
        labels,
        source: str,
        finetuned: FineTunedInfo | None = None,
        build=None,
        handle: str | None = None,
    ):
        self._model, self._build = model, build
        self.labels: list[str] = labels
        self.source = source  # where the weights came from, for logs and errors
        self.finetuned = finetuned
        self.handle = handle  # the hub handle the SavedModel was resolved from (hub models)

    @property
    def model(self) -> tf_keras.Model:
        if self._model is None and self._build is not None:
            self._model, self._build = self._build(), None
        return self._model

    def description(self) -> str:
        """Where the weights came from, in words, for the training log.

        Returns:
            Fine-tuned folder (variant) or hub handle and resolved path, with the class count.
        """
        if self.finetuned is not None:
            info = self.finetuned
            return (
                f"fine-tuned weights {model_name(info.model_id, info.model_mode)} ({len(self.labels)} classes) "
                f"in {self.source}"
            )
        return f"the hub model {self.handle} ({len(self.labels)} classes) at {self.source}"


def save_finetuned(model: tf_keras.Model, local_path: str, info: FineTunedInfo) -> str:
    os.makedirs(local_path, exist_ok=True)
    weights_path = os.path.join(local_path, info.weights_filename)
    model.save_weights(weights_path)
    write_finetuned_info(local_path, info)
    return weights_path


def write_finetuned_info(local_path: str, info: FineTunedInfo) -> None:
    """(Re)write movinet.json in local_path, atomically (training adds its calibration this way).

    Args:
        local_path: the folder holding the weights.
        info: what to record.
    """
    write_json(os.path.join(local_path, METADATA_FILENAME), dataclasses.asdict(info), indent=2)


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
    if not is_plain_filename(info.weights_filename):
        raise FineTunedFolderError(
            f"{metadata_path} names weights {info.weights_filename!r}, which is not a file name in {local_path} "
            "(a folder separator or '..' would lead out of the model's folder)"
        )
    if not os.path.isfile(os.path.join(local_path, info.weights_filename)):
        raise FineTunedFolderError(
            f"{metadata_path} names weights {info.weights_filename!r}, which are not in {local_path}"
        )
    return info


def check_weights_file(path: str) -> None:
    """Read every array of a Keras .weights.h5 file once, so a damaged file fails at load, not per video.

    A truncated or overwritten file (a copy cut short, a full disk) cannot be opened as HDF5 or
    fails on the first array past its end. Reading costs about the file's size in memory, one
    array at a time.

    Args:
        path: the weights file.

    Raises:
        FineTunedFolderError: the file cannot be read as Keras weights; the message names it.
    """
    import h5py

    def read(name, entry):
        if isinstance(entry, h5py.Dataset):
            entry[()]

    try:
        with h5py.File(path, "r") as weights:
            weights.visititems(read)
    except Exception as err:  # h5py raises OSError, KeyError or RuntimeError for a damaged file
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        raise FineTunedFolderError(
            f"the fine-tuned weights {path} ({size} bytes) cannot be read: {err}; the file is damaged or "
            "truncated (copy it again, or train again)"
        ) from err


def load_model(config: MovinetConfig, local_path: str | None, labels: Sequence[str] | None = None) -> LoadedModel:
    """Fine-tuned weights from local_path when it holds them, else the hub model (hub_handle or tfhub.dev).

    The hub model may have any number of classes (read from the SavedModel). Its label names,
    first that fits: labels (the model entity's label map) when it has one name per class, so
    renamed labels survive; the SavedModel's labels.txt asset (export-savedmodel writes it);
    the Kinetics-600 names for a 600-class model; else placeholder names class_0, class_1, ...
    with a warning (training replaces the head, so such a model is still a starting point).

    Args:
        config: variant, hub_handle, hub_version.
        local_path: the model's artifacts (may hold fine-tuned weights), or None.
        labels: the model entity's label map, if any.

    Returns:
        The loaded model, its labels and where it came from.
    """
    info = find_finetuned(local_path)
    if info is not None:
        return load_finetuned(config, local_path, info)
    handle = config.hub_handle or kinetics_handle(config)
    saved_model_dir = resolve_saved_model(config)
    # Read from the variables without building the network, which is built on first use.
    found = network.check_saved_model(config.model_id, config.model_mode, saved_model_dir)
    labels = _hub_labels(saved_model_dir, found.num_classes, labels)

    def build():
        return network.load_pretrained(config.model_id, config.model_mode, saved_model_dir)[0]

    return LoadedModel(None, labels, source=saved_model_dir, build=build, handle=handle)


def saved_model_labels(saved_model_dir: str) -> list[str] | None:
    """The label map in a SavedModel's labels.txt asset, or None when it has none.

    Args:
        saved_model_dir: the SavedModel folder.

    Returns:
        The labels by class index, or None.
    """
    path = os.path.join(saved_model_dir, "assets", LABELS_ASSET)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\n") for line in file if line.strip()]


def _hub_labels(saved_model_dir: str, num_classes: int, labels: Sequence[str] | None) -> list[str]:
    if labels is not None and len(labels) == num_classes:
        return list(labels)
    asset = saved_model_labels(saved_model_dir)
    if asset is not None and len(asset) == num_classes:
        chosen, origin = asset, f"its {LABELS_ASSET} asset"
    elif num_classes == 600:
        chosen, origin = kinetics_600_labels(), "the 600 Kinetics label names"
    else:
        # Training replaces the head anyway, so the weights stay usable as a starting point.
        chosen, origin = [f"class_{index}" for index in range(num_classes)], "placeholder names class_0, class_1, ..."
        logger.warning(
            "The SavedModel at %s has %d classes and no label names for them (no %s asset, and the model's label "
            "map has %d): predictions name them class_0..class_%d; set the model's labels (or id_to_label_map) "
            "to its %d class names",
            saved_model_dir,
            num_classes,
            LABELS_ASSET,
            len(labels or []),
            num_classes - 1,
            num_classes,
        )
        return chosen
    if labels:
        logger.warning(
            "The model's label map has %d labels, but the SavedModel at %s has %d classes (no fine-tuned "
            "weights in the artifacts): predictions use %s",
            len(labels),
            saved_model_dir,
            num_classes,
            origin,
        )
    return list(chosen)


def load_finetuned(config: MovinetConfig, local_path: str, info: FineTunedInfo) -> LoadedModel:
    if config.model_mode != info.model_mode or config.model_id != info.model_id:
        raise ConfigError(
            f"The fine-tuned weights in {local_path} are {model_name(info.model_id, info.model_mode)}, but the "
            f"configuration asks for model_id={config.model_id!r}, model_mode={config.model_mode!r}; "
            f"set them to {info.model_id!r} and {info.model_mode!r}"
        )

    weights_path = os.path.join(local_path, info.weights_filename)
    check_weights_file(weights_path)

    def build():
        model = network.build_classifier(info.model_id, info.model_mode, num_classes=len(info.labels))
        model.load_weights(weights_path)
        logger.info("Restored fine-tuned %s-%s weights from %s", info.model_id, info.model_mode, local_path)
        return model

    return LoadedModel(None, list(info.labels), source=local_path, finetuned=info, build=build)
