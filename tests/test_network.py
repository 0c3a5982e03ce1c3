"""The official network as the adapter builds it."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from adapter import network
from adapter.fast_conv import TemporalTapConv3D, use_temporal_tap_convolutions
from official.projects.movinet.modeling import movinet, movinet_model
from official.vision.modeling.layers import nn_layers


@pytest.fixture(scope="module")
def stock_base_model():
    """a0 base exactly as tf-models-official builds it (random weights, stock Conv3D layers)."""
    import tf_keras

    backbone = movinet.Movinet(
        model_id="a0", conv_type="3d", se_type="3d", activation="simple_swish", use_sync_bn=False,
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, None, 3]),
    )
    return movinet_model.MovinetClassifier(backbone, num_classes=7, activation="simple_swish")


@pytest.mark.parametrize("shape", [(2, 5, 37, 53, 3), (1, 1, 32, 32, 3), (1, 8, 64, 48, 3)])
def test_temporal_tap_convolutions_compute_the_stock_network_exactly(stock_base_model, shape):
    x = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
    stock = stock_base_model(x, training=False).numpy()
    conv_classes_before = {type(layer) for layer in stock_base_model.submodules if isinstance(layer, nn_layers.Conv3D)}

    switched = use_temporal_tap_convolutions(stock_base_model)
    try:
        taps = stock_base_model(x, training=False).numpy()
    finally:
        for layer in stock_base_model.submodules:
            if type(layer) is TemporalTapConv3D:
                layer.__class__ = nn_layers.Conv3D

    assert conv_classes_before == {nn_layers.Conv3D}
    assert switched > 50  # every convolution of a0 base
    np.testing.assert_allclose(taps, stock, atol=1e-5, rtol=1e-4)


def test_base_networks_use_tap_convolutions_and_stream_networks_keep_theirs():
    base = network.build_classifier("a0", "base", num_classes=3)
    stream = network.build_classifier("a0", "stream", num_classes=3)

    assert not [l for l in base.submodules if type(l) is nn_layers.Conv3D]
    assert [l for l in base.submodules if type(l) is TemporalTapConv3D]
    assert not [l for l in stream.submodules if type(l) is TemporalTapConv3D]
