import numpy as np
import pytest
import torch

from ktorch.layers import Input, Masking
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_parity_with_keras(keras, mask_value):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    x[0, 1] = mask_value
    x[1, [0, 4]] = mask_value
    x[1, 2, 0] = mask_value  # one equal feature does not mask the step
    ref = keras.layers.Masking(mask_value)
    expected = ref(x)
    y = Masking(mask_value)(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), to_numpy(expected))
    np.testing.assert_array_equal(y._keras_mask.numpy(), to_numpy(expected._keras_mask))
    assert y._keras_mask.tolist() == [
        [True, False, True, True, True],
        [False, True, True, True, False],
    ]


def test_masked_steps_are_zeroed():
    x = torch.tensor([[[2.0, 2.0], [1.0, 2.0]]])
    y = Masking(mask_value=2.0)(x)
    assert y.tolist() == [[[0.0, 0.0], [1.0, 2.0]]]


def test_symbolic_shape_and_mask():
    y = Masking()(Input((6, 3)))
    assert y.shape == (None, 6, 3) and y._mask_shape == (None, 6)
    assert Masking().weights == []


def test_config_round_trip(keras):
    layer = Masking(mask_value=-5.0)
    config = layer.get_config()
    assert set(config) == set(keras.layers.Masking().get_config())
    assert Masking.from_config(config).mask_value == -5.0
