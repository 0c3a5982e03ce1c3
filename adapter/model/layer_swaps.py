"""Layer swaps: change a built MoViNet's layer classes in place, same weights, same outputs.

Both swaps keep every variable, so hub restores, checkpoints and fine-tuned weights are unaffected.

Temporal taps (base networks, CPU): TensorFlow's Conv3D is slow outside cuDNN, grouped
(depthwise) Conv3D above all, and the official layer XLA-compiles every call. A 3D convolution
with temporal stride 1 equals the sum, over its temporal taps, of 2D convolutions of the
time-shifted frames, computed with fast 2D (depthwise) kernels. The speed-up was measured on CPU
only; where TensorFlow sees a GPU the stock layers (cuDNN's Conv3D) stay (docs/benchmarks.md).

Per-frame pooling (TF Lite): base networks' skip connections downsample with a 3D average
pooling of pool (1, 3, 3), for which TF Lite has no builtin kernel (the converter asks for TF
Select ops, which the LiteRT interpreter does not run). A pooling window one frame long is a 2D
pooling of each frame, which TF Lite runs natively.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras
from official.vision.modeling.layers import nn_layers

from adapter.core.devices import visible_gpus


class TemporalTapConv3D(nn_layers.Conv3D):
    """nn_layers.Conv3D ('same' padding, temporal stride 1) computed as a sum of 2D convolutions."""

    def call(self, inputs):
        kernel = self.kernel  # (taps, kh, kw, in_channels // groups, filters)
        taps = kernel.shape[0]
        in_channels = inputs.shape[-1]
        depthwise = self.groups == in_channels and self.groups > 1
        front = (taps - 1) // 2  # 'same' along time, as Conv3D pads it
        padded = tf.pad(inputs, [[0, 0], [front, taps - 1 - front], [0, 0], [0, 0], [0, 0]]) if taps > 1 else inputs
        shape = tf.shape(inputs)
        batch, frames, height, width = shape[0], shape[1], shape[2], shape[3]
        strides = (1, self.strides[1], self.strides[2], 1)
        total = None
        for tap in range(taps):
            shifted = tf.reshape(padded[:, tap : tap + frames], [batch * frames, height, width, in_channels])
            if depthwise:
                # (kh, kw, 1, C) -> depthwise filter (kh, kw, C, 1)
                out = tf.nn.depthwise_conv2d(shifted, tf.transpose(kernel[tap], [0, 1, 3, 2]), strides, "SAME")
            else:
                out = tf.nn.conv2d(shifted, kernel[tap], strides, "SAME")
            total = out if total is None else total + out
        out_shape = tf.shape(total)
        outputs = tf.reshape(total, [batch, frames, out_shape[1], out_shape[2], self.filters])
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


def temporal_taps_preferred(gpus: list | None = None) -> bool:
    """Whether base networks built on this machine use temporal taps (CPU) or the stock Conv3D (GPU).

    Args:
        gpus: the visible GPUs (None: ask TensorFlow).

    Returns:
        True when there is no GPU.
    """
    if gpus is None:
        gpus = visible_gpus()
    return not gpus


def _factorizable(layer) -> bool:
    return (
        type(layer) is nn_layers.Conv3D
        and layer.padding == "same"
        and tuple(layer.strides)[0] == 1
        and tuple(layer.dilation_rate) == (1, 1, 1)
        and layer.groups in (1, layer.kernel.shape[-1])
    )


def switch_layer_class(model: tf_keras.Model, eligible, layer_class: type) -> int:
    """Give every eligible layer of model another class computing the same function, in place.

    Only the call changes: the layers keep their variables and configuration, so weights load
    and save as before.

    Args:
        model: a built Keras model.
        eligible: layer -> bool, the layers to switch.
        layer_class: a subclass of theirs with another call().
    Returns:
        How many layers were switched.
    """
    switched = 0
    for layer in model.submodules:
        if isinstance(layer, tf_keras.layers.Layer) and eligible(layer):
            layer.__class__ = layer_class
            switched += 1
    return switched


def use_temporal_tap_convolutions(model: tf_keras.Model) -> int:
    """Switch every eligible Conv3D in model (built) to TemporalTapConv3D; returns how many."""
    return switch_layer_class(model, _factorizable, TemporalTapConv3D)


class FrameAveragePooling3D(tf_keras.layers.AveragePooling3D):
    """AveragePooling3D with a one-frame window and temporal stride, computed as a 2D pooling per frame."""

    def call(self, inputs):
        shape = tf.shape(inputs)
        batch, frames, height, width = shape[0], shape[1], shape[2], shape[3]
        channels = inputs.shape[-1]
        flat = tf.reshape(inputs, [batch * frames, height, width, channels])
        padding = self.padding.upper()
        pooled = tf.nn.avg_pool2d(flat, self.pool_size[1:], self.strides[1:], padding)
        pooled_shape = tf.shape(pooled)
        return tf.reshape(pooled, [batch, frames, pooled_shape[1], pooled_shape[2], channels])


def _per_frame(layer) -> bool:
    return (
        type(layer) is tf_keras.layers.AveragePooling3D
        and layer.data_format == "channels_last"
        and tuple(layer.pool_size)[0] == 1
        and tuple(layer.strides)[0] == 1
    )


def tflite_compatible(model: tf_keras.Model) -> int:
    """Switch model's per-frame 3D average poolings to FrameAveragePooling3D, in place.

    Args:
        model: a MovinetClassifier (base or stream; stream networks have none to switch).

    Returns:
        How many layers were switched.
    """
    return switch_layer_class(model, _per_frame, FrameAveragePooling3D)
