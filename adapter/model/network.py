"""The official MoViNet network (tf-models-official): building it and restoring hub weights into it.

One tf_keras model object serves base inference, stream inference with states,
fine-tuning with a new head, and features. Pretrained TF Hub models are Keras
SavedModels of this same architecture, so their variables restore exactly into a
freshly built network (reviving a stream SavedModel with load_model instead picks
the wrong squeeze-excitation, hence the explicit build).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import tensorflow as tf
import tf_keras
from official.projects.movinet.modeling import movinet, movinet_layers, movinet_model

from adapter.core.errors import UsageError
from adapter.core.variants import VARIANTS, architecture, model_name
from adapter.model.layer_swaps import temporal_taps_preferred, use_temporal_tap_convolutions

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
    tap_convolutions: bool = True,
) -> tf_keras.Model:
    """A MovinetClassifier; stream mode takes and returns the model's states.

    Base networks compute their 3D convolutions as sums of 2D ones (model/layer_swaps.py): the
    same function of the same weights, much faster on CPU (docs/benchmarks.md). Where
    TensorFlow sees a GPU they keep the stock Conv3D (layer_swaps.temporal_taps_preferred).
    tap_convolutions=False always keeps the stock layers (an exported SavedModel holds
    only official layers).
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
    if model_mode == "base" and tap_convolutions and temporal_taps_preferred():
        use_temporal_tap_convolutions(model)
    return model


@dataclasses.dataclass(frozen=True)
class SavedModelInfo:
    """What a hub-format MoViNet SavedModel's variables say about it (None: not recognised)."""

    model_id: str | None
    model_mode: str | None
    num_classes: int

    def name(self) -> str:
        """Returns: e.g. "movinet-a0-stream with 600 classes", for errors."""
        model_id, mode = self.model_id or "<unknown variant>", self.model_mode or "<unknown mode>"
        return f"{model_name(model_id, mode)} with {self.num_classes} classes"


def classifier_head(model: tf_keras.Model) -> movinet_layers.ClassifierHead:
    """The one ClassifierHead of a MovinetClassifier.

    Args:
        model: a MovinetClassifier.

    Returns:
        Its classifier head layer.
    """
    heads = [layer for layer in model.layers if isinstance(layer, movinet_layers.ClassifierHead)]
    if len(heads) != 1:
        raise ValueError("expected a MovinetClassifier with one classifier head")
    return heads[0]


def describe_saved_model(saved_model_dir: str) -> SavedModelInfo:
    """Variant, mode and class count of a hub-format MovinetClassifier SavedModel, read from its variables.

    A Keras SavedModel numbers the model's variables in order; a MovinetClassifier's last
    four are the head's projection (kernel, bias) and class layer (kernel, bias). The
    projection's input width is the variant's embeddings size; its kernel is 5-D in base
    networks (Conv3D) and 4-D in stream ones (2+1D convolutions run as Conv2D).

    Args:
        saved_model_dir: the SavedModel folder.

    Returns:
        Its SavedModelInfo; WeightsMismatch when the variables are not a MovinetClassifier's.
    """
    prefix = os.path.join(saved_model_dir, "variables", "variables")
    try:
        shapes = dict(tf.train.list_variables(prefix))
    except (ValueError, tf.errors.OpError) as err:
        raise WeightsMismatch(f"Cannot read the variables of the SavedModel at {saved_model_dir}: {err}") from err
    numbered = {}
    for name, shape in shapes.items():
        match = name.split("/")
        if len(match) == 4 and match[0] == "variables" and match[1].isdigit():
            numbered[int(match[1])] = shape
    last = sorted(numbered)[-4:]
    if len(last) < 4 or len(numbered[last[3]]) != 1 or numbered[last[2]][-1:] != numbered[last[3]]:
        raise WeightsMismatch(
            f"The SavedModel at {saved_model_dir} is not a MoViNet classifier in the TF Hub format "
            f"(its last variables have shapes {[numbered[i] for i in last]})"
        )
    projection = numbered[last[0]]
    mode = {5: "base", 4: "stream"}.get(len(projection))
    widths = {variant.embeddings_size: model_id for model_id, variant in VARIANTS.items()}
    model_id = widths.get(projection[-2]) if len(projection) >= 2 else None
    return SavedModelInfo(model_id, mode, int(numbered[last[3]][0]))


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


def load_pretrained(model_id: str, model_mode: str, saved_model_dir: str) -> tuple[tf_keras.Model, SavedModelInfo]:
    """Build the official network and restore a hub-format SavedModel (any number of classes) into it.

    Args:
        model_id, model_mode: the variant the configuration asks for.
        saved_model_dir: the SavedModel folder.

    Returns:
        The model and what the SavedModel is; WeightsMismatch (naming what it found and what
        was asked for) when it is another variant or mode.
    """
    found = check_saved_model(model_id, model_mode, saved_model_dir)
    model = build_classifier(model_id, model_mode, found.num_classes)
    restore_saved_model_variables(model, saved_model_dir)
    return model, found


def check_saved_model(model_id: str, model_mode: str, saved_model_dir: str) -> SavedModelInfo:
    """What a hub-format SavedModel is, checked against the variant asked for (no network is built).

    Args:
        model_id, model_mode: the variant the configuration asks for.
        saved_model_dir: the SavedModel folder.

    Returns:
        Its SavedModelInfo; WeightsMismatch (naming what it found and what was asked for)
        when it is another variant or mode.
    """
    found = describe_saved_model(saved_model_dir)
    if (found.model_id, found.model_mode) != (model_id, model_mode):
        raise WeightsMismatch(
            f"The SavedModel at {saved_model_dir} does not match the network built for this configuration: "
            f"it is {found.name()}, but the configuration asks for model_id={model_id!r}, "
            f"model_mode={model_mode!r}; set them to {found.model_id!r} and {found.model_mode!r} "
            "or point hub_handle at another SavedModel"
        )
    return found
