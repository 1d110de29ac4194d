import numpy as np
import pytest
import torch

from ktorch import config as ktorch_config
from ktorch.layers import Input, Rescaling
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "scale, offset", [(1 / 255.0, 0.0), (1 / 127.5, -1.0), ([0.5, 1.0, 2.0], [0.0, 1.0, -1.0])]
)
def test_parity_with_keras(keras, scale, offset):
    x = np.random.default_rng(0).integers(0, 256, size=(2, 4, 4, 3)).astype("float32")
    expected = to_numpy(keras.layers.Rescaling(scale, offset)(x))
    out = Rescaling(scale, offset)(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert out.dtype == torch.float32


def test_integer_inputs_become_floats_and_shapes():
    out = Rescaling(0.5)(torch.tensor([[2, 4]], dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.tolist() == [[1.0, 2.0]]
    assert Rescaling(2.0)(Input((4, 4, 3))).shape == (None, 4, 4, 3)
    assert Rescaling(2.0).weights == [] and Rescaling(2.0).state_dict() == {}


def test_per_channel_values_with_channels_first():
    previous = ktorch_config.image_data_format()
    ktorch_config.set_image_data_format("channels_first")
    try:
        out = Rescaling([1.0, 10.0])(torch.ones(1, 2, 2, 2))
    finally:
        ktorch_config.set_image_data_format(previous)
    assert torch.all(out[:, 0] == 1.0) and torch.all(out[:, 1] == 10.0)


def test_config_round_trip(keras):
    layer = Rescaling([0.5, 2.0], offset=1.0)
    config = layer.get_config()
    assert set(config) == set(keras.layers.Rescaling(1.0).get_config())
    restored = Rescaling.from_config(config)
    assert restored(torch.ones(1, 2)).tolist() == [[1.5, 3.0]]
