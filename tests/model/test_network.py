"""The official network as the adapter builds it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from official.projects.movinet.modeling import movinet, movinet_model
from official.vision.modeling.layers import nn_layers

from adapter.model import network
from adapter.model.layer_swaps import TemporalTapConv3D, use_temporal_tap_convolutions


@pytest.fixture(scope="module")
def stock_base_model():
    """a0 base exactly as tf-models-official builds it (random weights, stock Conv3D layers)."""
    import tf_keras

    backbone = movinet.Movinet(
        model_id="a0",
        conv_type="3d",
        se_type="3d",
        activation="simple_swish",
        use_sync_bn=False,
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


def test_the_convolution_choice_follows_the_device_and_the_weights_are_the_same_either_way(monkeypatch, tmp_path):
    """Temporal taps were measured faster on CPU only; where a GPU is seen the stock Conv3D (cuDNN) stays."""
    import tf_keras

    real_list = tf.config.list_physical_devices

    def devices(gpus):
        fake = [tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(gpus)]
        return lambda device_type=None: fake if device_type == "GPU" else real_list(device_type)

    monkeypatch.setattr(tf.config, "list_physical_devices", devices(1))
    tf_keras.utils.set_random_seed(4)
    on_gpu = network.build_classifier("a0", "base", num_classes=3)
    monkeypatch.setattr(tf.config, "list_physical_devices", devices(0))
    tf_keras.utils.set_random_seed(4)
    on_cpu = network.build_classifier("a0", "base", num_classes=3)

    assert [l for l in on_gpu.submodules if type(l) is nn_layers.Conv3D]
    assert not [l for l in on_gpu.submodules if type(l) is TemporalTapConv3D]
    assert not [l for l in on_cpu.submodules if type(l) is nn_layers.Conv3D]
    # The same variables: a checkpoint written with one restores every variable of the other.
    assert [w.shape for w in on_gpu.weights] == [w.shape for w in on_cpu.weights]
    path = tf.train.Checkpoint(root=on_gpu).write(str(tmp_path / "gpu"))
    tf.train.Checkpoint(root=on_cpu).read(path).assert_existing_objects_matched().assert_consumed()
    x = tf.random.uniform([1, 3, 32, 32, 3], seed=2)
    np.testing.assert_allclose(on_cpu(x, training=False), on_gpu(x, training=False), atol=1e-5, rtol=1e-4)
