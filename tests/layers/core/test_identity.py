import numpy as np
import torch

from ktorch.layers import Identity, Input
from tests.keras_ref import keras_module


def test_returns_input_and_mask():
    x = torch.randn(2, 3)
    x._keras_mask = torch.tensor([True, False])
    y = Identity()(x)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert y._keras_mask is x._keras_mask
    assert Identity().weights == []


def test_symbolic_keeps_dtype_and_structure():
    ints = Input((4,), dtype="int32")
    assert Identity()(ints).dtype == "int32"
    a, b = Identity()([Input((2,)), Input((3,))])
    assert a.shape == (None, 2) and b.shape == (None, 3)


def test_config_round_trip():
    keras = keras_module()
    layer = Identity(name="same")
    assert set(layer.get_config()) == set(keras.layers.Identity().get_config())
    assert Identity.from_config(layer.get_config()).name == "same"
