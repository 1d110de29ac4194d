import numpy as np
import pytest
import torch

from ktorch.layers import Input, ReLU
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_value": 6.0},
        {"negative_slope": 0.2},
        {"threshold": 0.5},
        {"max_value": 2.0, "negative_slope": 0.1, "threshold": 0.5},
    ],
)
def test_parity_with_keras(keras, kwargs):
    x = np.random.default_rng(0).normal(scale=3.0, size=(4, 6)).astype("float32")
    expected = to_numpy(keras.layers.ReLU(**kwargs)(x))
    np.testing.assert_allclose(ReLU(**kwargs)(torch.tensor(x)).numpy(), expected, atol=1e-6)


def test_shapes_and_no_weights():
    layer = ReLU()
    assert layer.weights == [] and layer(Input((3, 2))).shape == (None, 3, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_value": -1.0}, "max_value of a ReLU layer cannot be a negative value"),
        ({"negative_slope": -0.1}, "negative_slope of a ReLU layer cannot be None"),
        ({"threshold": None}, "threshold of a ReLU layer cannot be None"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReLU(**kwargs)


def test_config_round_trip(keras):
    layer = ReLU(max_value=5.0, negative_slope=0.2, threshold=1.0)
    config = layer.get_config()
    assert set(config) == set(keras.layers.ReLU().get_config())
    restored = ReLU.from_config(config)
    assert (restored.max_value, restored.negative_slope, restored.threshold) == (5.0, 0.2, 1.0)
