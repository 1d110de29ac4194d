import numpy as np
import pytest
import torch

from ktorch.layers import LeakyReLU
from tests.keras_ref import keras_module, to_numpy


def test_parity_with_keras():
    keras = keras_module()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    for slope in (0.3, 0.05):
        expected = to_numpy(keras.layers.LeakyReLU(negative_slope=slope)(x))
        np.testing.assert_allclose(
            LeakyReLU(negative_slope=slope)(torch.tensor(x)).numpy(), expected, atol=1e-6
        )
    assert LeakyReLU().negative_slope == 0.3


def test_keras2_alpha_alias():
    with pytest.warns(UserWarning, match="alpha"):
        layer = LeakyReLU(alpha=0.5)
    assert layer(torch.tensor([-2.0, 2.0])).tolist() == [-1.0, 2.0]
    assert layer.get_config()["negative_slope"] == 0.5


def test_invalid_slope():
    with pytest.raises(ValueError, match="cannot be None or negative"):
        LeakyReLU(negative_slope=-1)


def test_config_round_trip():
    keras = keras_module()
    config = LeakyReLU(0.1).get_config()
    assert set(config) == set(keras.layers.LeakyReLU().get_config())
    assert LeakyReLU.from_config(config).negative_slope == 0.1
