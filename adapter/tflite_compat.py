"""Make a Keras MoViNet convertible to TF Lite builtin ops, without changing what it computes.

Base networks' skip connections downsample with a 3D average pooling of pool (1, 3, 3):
TF Lite has no builtin AvgPool3D kernel (the converter asks for TF Select ops, which the
LiteRT interpreter does not run). A pooling window one frame long is a 2D pooling of each
frame, which TF Lite runs natively; the layers hold no weights, so switching their class
(as fast_conv.py does for convolutions) changes nothing else.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from adapter.fast_conv import switch_layer_class


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
