import numpy as np
import pytest
import torch

from ktorch import activations
from ktorch.layers import Activation, Input
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def test_no_weights_and_shapes():
    layer = Activation("relu")
    assert layer.built and layer.weights == []
    assert layer(torch.zeros(2, 3, 4)).shape == (2, 3, 4)
    assert layer(Input((3, 4))).shape == (None, 3, 4)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "gelu", None])
def test_parity_with_keras(keras, name):
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    expected = to_numpy(keras.layers.Activation(name)(x))
    np.testing.assert_allclose(Activation(name)(torch.tensor(x)).numpy(), expected, atol=1e-5)


def test_callable_and_mask_passthrough():
    layer = Activation(activations.relu)
    x = torch.tensor([[-1.0, 2.0]])
    x._keras_mask = torch.tensor([True])
    y = layer(x)
    np.testing.assert_array_equal(y.numpy(), [[0.0, 2.0]])
    assert y._keras_mask is x._keras_mask


def test_config_round_trip(keras):
    layer = Activation("tanh", name="act")
    config = layer.get_config()
    assert set(config) == set(keras.layers.Activation("tanh").get_config())
    restored = Activation.from_config(config)
    assert restored.activation is activations.tanh and restored.name == "act"
