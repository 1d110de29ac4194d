"""Dense: weights, shapes, config, and parity with Keras 3."""

import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers
from tests.keras_ref import keras_module, to_numpy


def test_weights_and_shapes():
    layer = layers.Dense(5, activation="relu")
    out = layer(torch.randn(4, 3))
    assert out.shape == (4, 5)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 5), (5,)]
    assert layers.Dense(2, use_bias=False)(torch.ones(1, 3)).shape == (1, 2)
    symbolic = layers.Dense(7)(ktorch.Input((2, 3)))
    assert symbolic.shape == (None, 2, 7)


def test_invalid_units():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)


@pytest.mark.parametrize("activation", [None, "relu", "softmax", "tanh"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_parity(activation, shape, use_bias):
    keras = keras_module()
    ref = keras.layers.Dense(6, activation=activation, use_bias=use_bias)
    x = np.random.rand(*shape).astype("float32")
    ref_out = ref(x)
    ours = layers.Dense(6, activation=activation, use_bias=use_bias)
    ours.build((None,) + shape[1:])
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(ref_out), atol=1e-5)
    config = ours.get_config()
    expected = {**ref.get_config(), "dtype": config["dtype"], "name": config["name"]}
    assert config == expected


def test_config_roundtrip():
    layer = layers.Dense(3, activation="relu", kernel_regularizer="l2", name="d")
    clone = layers.Dense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
