"""Where and in what precision a run trains: the tf.distribute strategy and mixed precision.

- Devices: MirroredStrategy over all visible GPUs when there are several, else TensorFlow's
  default strategy (one GPU or the CPU). batch_size is per device, so a step's global batch
  is batch_size x the number of devices; Keras splits it over them and averages the gradients.
- mixed_precision ("auto": on when TensorFlow sees a GPU, else off; or true/false): the
  backbone computes in float16 under the mixed_float16 policy (its variables stay float32),
  the head (feature projection and logits) in float32, and Adam runs in a LossScaleOptimizer
  so small float16 gradients do not underflow.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import tensorflow as tf
import tf_keras

from adapter.core.devices import visible_gpus

logger = logging.getLogger(__name__)

MIXED_POLICY = "mixed_float16"

# Layers of the MoViNet backbone that TensorFlow has no float16 CPU kernel for (AvgPool3D):
# under mixed precision without a GPU they compute in float32.
NO_FLOAT16_CPU_KERNEL = (tf_keras.layers.AveragePooling3D,)


def choose_strategy(gpus: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy over several GPUs, else the default strategy.

    Args:
        gpus: the visible GPUs (None: ask TensorFlow).

    Returns:
        The strategy to build, compile and fit the model under.
    """
    gpus = visible_gpus() if gpus is None else list(gpus)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def use_mixed_precision(setting: str | bool, gpus: Sequence[str] | None = None) -> bool:
    """Resolve the mixed_precision key.

    Args:
        setting: "auto", True or False (validated by adapter.config).
        gpus: the visible GPUs (None: ask TensorFlow).

    Returns:
        Whether the run trains in mixed_float16.
    """
    if setting == "auto":
        return bool(visible_gpus() if gpus is None else gpus)
    return bool(setting)


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Build layers under mixed_float16 (or float32) and restore the global policy afterwards.

    Layers keep the policy they were created with, so only construction needs it.

    Args:
        mixed: mixed_float16 when true, float32 otherwise.

    Returns:
        A context manager.
    """
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(MIXED_POLICY if mixed else "float32")
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def keep_float32_without_gpu(model: tf_keras.Model, gpus: Sequence[str] | None = None) -> int:
    """Without a GPU, make the layers that have no float16 CPU kernel compute in float32.

    Args:
        model: a model built under the mixed policy.
        gpus: the visible GPUs (None: ask TensorFlow).

    Returns:
        How many layers were switched (0 with a GPU).
    """
    if visible_gpus() if gpus is None else gpus:
        return 0
    switched = 0
    for layer in model.submodules:
        if isinstance(layer, NO_FLOAT16_CPU_KERNEL) and layer.dtype_policy.name == MIXED_POLICY:
            # Keras has no public setter; the policy is only read when the layer is called.
            layer._set_dtype_policy(tf_keras.mixed_precision.Policy("float32"))  # noqa: SLF001
            switched += 1
    return switched


def wrap_optimizer(optimizer: tf_keras.optimizers.Optimizer, mixed: bool) -> tf_keras.optimizers.Optimizer:
    """The optimizer to compile with: in a dynamic LossScaleOptimizer under mixed precision.

    Args:
        optimizer: the run's optimizer.
        mixed: whether the run trains in mixed_float16.

    Returns:
        optimizer, or the LossScaleOptimizer around it.
    """
    return tf_keras.mixed_precision.LossScaleOptimizer(optimizer) if mixed else optimizer
