import numpy as np
import pytest
import torch

import ktorch
from ktorch.layers import Conv2D, Dense, Dropout, Embedding, TimeDistributed
from tests.keras_ref import keras_module
from tests.layers.rnn.parity import assert_parity, normalized


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def test_parity_dense():
    assert_parity(
        TimeDistributed(Dense(3, activation="relu")),
        lambda k: k.layers.TimeDistributed(k.layers.Dense(3, activation="relu")),
        _x(2, 4, 5),
    )


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_parity_conv2d(padding):
    assert_parity(
        TimeDistributed(Conv2D(2, 3, padding=padding, strides=2)),
        lambda k: k.layers.TimeDistributed(k.layers.Conv2D(2, 3, padding=padding, strides=2)),
        _x(2, 3, 7, 7, 3),
    )


def test_shapes_weights_and_mask():
    layer = TimeDistributed(Conv2D(4, 3))
    inputs = ktorch.Input((5, 8, 8, 2))
    assert layer(inputs).shape == (None, 5, 6, 6, 4)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 3, 2, 4), (4,)]
    with pytest.raises(ValueError, match="at least 3"):
        TimeDistributed(Dense(2)).build((None, 3))
    tokens = torch.tensor([[1, 0, 2]])
    model = ktorch.Sequential([Embedding(4, 3, mask_zero=True), TimeDistributed(Dense(2))])
    out = model(tokens)
    assert tuple(out.shape) == (1, 3, 2)
    assert torch.equal(out._keras_mask, tokens != 0)


def test_training_flag_reaches_layer():
    layer = TimeDistributed(Dropout(0.5))
    x = torch.ones(4, 3, 50)
    torch.testing.assert_close(layer(x), x)
    assert (layer(x, training=True) == 0).any()


def test_gradients_and_config():
    keras = keras_module()
    layer = TimeDistributed(Dense(2), name="td")
    x = torch.as_tensor(_x(2, 3, 4)).requires_grad_(True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.layer.kernel.grad is not None
    ref = keras.layers.TimeDistributed(keras.layers.Dense(2, name=layer.layer.name), name="td")
    config, ref_config = normalized(layer.get_config()), normalized(ref.get_config())
    assert set(config) == set(ref_config)
    assert config["name"] == ref_config["name"]
    assert config["layer"]["class_name"] == ref_config["layer"]["class_name"] == "Dense"
    assert config["layer"]["config"]["units"] == 2
    clone = TimeDistributed.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
