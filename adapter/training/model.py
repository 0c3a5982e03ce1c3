"""The model a run trains: its label map, what it starts from, the head surgery, compile."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import tf_keras

from adapter.core.config import ConfigError, MovinetConfig
from adapter.model import network
from adapter.model.loading import LoadedModel, load_model
from adapter.model.network import classifier_head
from adapter.training import scaling

logger = logging.getLogger(__name__)

# Training also reports top-k accuracy when there are more labels than this (Keras log key below).
TOP_K_METRIC = 5
TOP_K_METRIC_NAME = "top5_accuracy"


def check_trainable(config: MovinetConfig) -> None:
    """Only base models train; say so (naming the key) before any data is read.

    Args:
        config: the run's configuration.

    Returns:
        None; raises ConfigError for a stream model.
    """
    if config.model_mode != "base":
        raise ConfigError(
            f"Fine-tuning trains base models only, but this model has model_mode={config.model_mode!r}. "
            "Set the configuration key 'model_mode' to 'base' to fine-tune (stream models cannot be trained here)."
        )


def training_labels(labels: Sequence[str] | None) -> list[str]:
    """The label map to train for, checked: present, each label once.

    Args:
        labels: the model's label map (MovinetAdapter: the model's labels, else id_to_label_map).

    Returns:
        The labels, by class index; ConfigError when there are none or one repeats.
    """
    if not labels:
        raise ConfigError(
            "The model has no label map to train for: set the model's labels "
            "(or the configuration key 'id_to_label_map')"
        )
    labels = list(labels)
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"The model's labels {duplicates!r} appear more than once; each class needs one label")
    return labels


def starting_model(
    config: MovinetConfig, loaded: LoadedModel | None = None, loaded_config: MovinetConfig | None = None
) -> LoadedModel | None:
    """What training starts from: the model the adapter loaded, or the hub model; None for random init.

    Args:
        config: the run's configuration (variant, pretrained).
        loaded: the model the adapter holds (load() of the model's artifacts), if any.
        loaded_config: the configuration it was loaded with.

    Returns:
        The starting model, or None when pretrained is false.
    """
    if not config.pretrained:
        logger.warning(
            "pretrained is false: training %s from random initialisation, not from pretrained "
            "weights (expect far more data and epochs to be needed)",
            config.model_name,
        )
        return None
    if (
        loaded is not None
        and loaded_config is not None
        and (loaded_config.model_id, loaded_config.model_mode)
        == (
            config.model_id,
            config.model_mode,
        )
    ):
        return loaded
    # Not loaded yet (or loaded for another variant): the pretrained hub model. If it cannot be
    # had, hub.py's error propagates; training never falls back to random weights silently.
    # (Its Kinetics labels are irrelevant: the head is replaced.)
    return load_model(config, None)


def build_training_model(
    config: MovinetConfig, labels: Sequence[str], start: LoadedModel | None, mixed: bool = False
) -> tf_keras.Model:
    """The base classifier to train: the starting model's backbone and a head sized to labels.

    The network is built anew (in the caller's tf.distribute scope, under the run's
    precision policy) and the starting model's weights are copied in. The head's feature
    projection is carried over (it is not tied to the classes); its class layer is new,
    unless the starting model is already fine-tuned on exactly these labels, in which
    case training continues from it whole.

    Args:
        config: variant, dropout_rate and freeze_backbone.
        labels: the label map (one output per label).
        start: the starting model, or None for random initialisation.
        mixed: build the backbone under mixed_float16 (adapter.training.scaling); the head stays float32.

    Returns:
        The (uncompiled) Keras classifier.
    """
    with scaling.precision_policy(mixed):
        backbone = network.build_backbone(config.model_id, "base")
    if mixed:
        scaling.keep_float32_without_gpu(backbone)
    # Built under float32: the head, whose logits feed the loss, computes in float32.
    model = network.build_classifier(
        config.model_id, "base", num_classes=len(labels), backbone=backbone, dropout_rate=config.dropout_rate
    )
    if start is not None:
        model.backbone.set_weights(start.model.backbone.get_weights())
        source_head, new_head = classifier_head(start.model), classifier_head(model)
        # ClassifierHead keeps its projection and class layer as _head and _classifier.
        parts = [(source_head._head, new_head._head)]  # noqa: SLF001
        same_classes = start.finetuned is not None and list(start.labels) == list(labels)
        if same_classes:
            parts.append((source_head._classifier, new_head._classifier))  # noqa: SLF001
        for source, target in parts:
            target.set_weights(source.get_weights())
        logger.info(
            "Training starts from %s: %s",
            start.description(),
            "continuing with its whole head (same labels)"
            if same_classes
            else f"its backbone and head projection, with a new class layer for {len(labels)} labels",
        )
    if config.freeze_backbone:
        # Frozen batch norm also runs in inference mode (Keras 2), keeping the pretrained statistics.
        model.backbone.trainable = False
    return model


def compile_for_training(model: tf_keras.Model, config: MovinetConfig, mixed: bool = False) -> None:
    """Adam at the configured learning rate, cross-entropy on logits, accuracy (and top-5 over 5 labels).

    multi_label: binary cross-entropy on the logits (independent sigmoids) and per-label accuracy;
    the model itself is the same (the head outputs logits either way).

    Args:
        model: the classifier from build_training_model.
        config: its learning_rate.
        mixed: whether it was built for mixed precision (Adam then runs in a LossScaleOptimizer).

    Returns:
        None; the model is compiled in place.
    """
    if config.multi_label:
        # Independent sigmoids: binary cross-entropy on the logits; "accuracy" is per label (logit > 0).
        model.compile(
            optimizer=scaling.wrap_optimizer(tf_keras.optimizers.Adam(learning_rate=config.learning_rate), mixed),
            loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf_keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],
        )
        return
    metrics = [tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if model.output_shape[-1] > TOP_K_METRIC:
        metrics.append(tf_keras.metrics.SparseTopKCategoricalAccuracy(k=TOP_K_METRIC, name=TOP_K_METRIC_NAME))
    model.compile(
        optimizer=scaling.wrap_optimizer(tf_keras.optimizers.Adam(learning_rate=config.learning_rate), mixed),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
    )
