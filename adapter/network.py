"""The official MoViNet network (tf-models-official): building, restoring and exporting.

One tf_keras model object serves base inference, stream inference with states,
fine-tuning with a new head, and features. Pretrained TF Hub models are Keras
SavedModels of this same architecture, so their variables restore exactly into a
freshly built network (reviving a stream SavedModel with load_model instead picks
the wrong squeeze-excitation, hence the explicit build).
"""
from __future__ import annotations

import logging
import os

import tensorflow as tf
import tf_keras
from official.projects.movinet.modeling import movinet, movinet_model

from adapter.errors import UsageError
from adapter.fast_conv import temporal_taps_preferred, use_temporal_tap_convolutions
from adapter.presets import architecture

logger = logging.getLogger(__name__)

# swish with a custom gradient saves memory in training but cannot be exported;
# the forward values are identical, and activations carry no variables.
_SWISH = "simple_swish"


class WeightsMismatch(UsageError, RuntimeError):
    """Stored variables do not fit the network built for this configuration."""


def build_backbone(model_id: str, model_mode: str) -> tf_keras.Model:
    arch = architecture(model_id, model_mode)
    if arch["activation"] == "swish":
        arch["activation"] = _SWISH
    return movinet.Movinet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, None, 3]),
        use_sync_bn=False,
        **arch,
    )


def build_classifier(
    model_id: str,
    model_mode: str,
    num_classes: int,
    backbone: tf_keras.Model | None = None,
    dropout_rate: float = 0.0,
) -> tf_keras.Model:
    """A MovinetClassifier; stream mode takes and returns the model's states.

    Base networks compute their 3D convolutions as sums of 2D ones (fast_conv.py): the
    same function of the same weights, much faster on CPU (README, Benchmarks). Where
    TensorFlow sees a GPU they keep the stock Conv3D (fast_conv.temporal_taps_preferred).
    """
    backbone = backbone if backbone is not None else build_backbone(model_id, model_mode)
    model = movinet_model.MovinetClassifier(
        backbone=backbone,
        num_classes=num_classes,
        output_states=model_mode == "stream",
        input_specs={"image": tf_keras.layers.InputSpec(shape=[None, None, None, None, 3])},
        activation=_SWISH,
        dropout_rate=dropout_rate,
    )
    if model_mode == "base" and temporal_taps_preferred():
        use_temporal_tap_convolutions(model)
    return model


def restore_saved_model_variables(model: tf_keras.Model, saved_model_dir: str) -> None:
    """Restore a Keras SavedModel's variables into model; every variable must be matched."""
    prefix = os.path.join(saved_model_dir, "variables", "variables")
    try:
        status = tf.train.Checkpoint(root=model).read(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise WeightsMismatch(
            f"The SavedModel at {saved_model_dir} does not match the network built for this "
            f"configuration (check model_id and model_mode): {err}"
        ) from err
    status.expect_partial()


def load_pretrained(model_id: str, model_mode: str, saved_model_dir: str, num_classes: int = 600):
    """Build the official network and restore a hub-format SavedModel into it."""
    model = build_classifier(model_id, model_mode, num_classes)
    restore_saved_model_variables(model, saved_model_dir)
    return model


def export_hub_model(
    output_dir: str,
    model_id: str,
    model_mode: str,
    num_classes: int = 600,
    checkpoint_path: str | None = None,
) -> str:
    """Write a TF-Hub-format SavedModel of the official architecture.

    Random initialisation, or an official checkpoint's weights when checkpoint_path
    is given. This is how users convert checkpoints, and how tests get models offline.
    """
    # Imported here: the tool module defines absl flags at import time.
    from official.projects.movinet.tools import export_saved_model

    arch = architecture(model_id, model_mode)
    export_saved_model.build_and_export_saved_model(
        export_path=output_dir,
        model_id=model_id,
        causal=arch["causal"],
        conv_type=arch["conv_type"],
        se_type=arch["se_type"],
        activation=arch["activation"],
        classifier_activation="swish",
        gating_activation=arch["gating_activation"],
        use_positional_encoding=arch["use_positional_encoding"],
        num_classes=num_classes,
        input_shape=(None, None, None, None, 3),
        bundle_input_init_states_fn=True,
        checkpoint_path=checkpoint_path or None,
    )
    return output_dir
