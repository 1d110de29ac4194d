import pytest
import torch

from ktorch.layers import AlphaDropout
from tests.keras_ref import keras_module


def test_keeps_mean_and_variance_of_standard_inputs():
    torch.manual_seed(0)
    x = torch.randn(200, 500)
    y = AlphaDropout(0.3)(x, training=True)
    assert abs(y.mean().item()) < 0.02
    assert abs(y.std().item() - 1.0) < 0.05
    assert AlphaDropout(0.3)(x) is x


def test_dropped_units_take_one_value_and_noise_shape_broadcasts():
    y = AlphaDropout(0.5, noise_shape=(None, 1, None))(torch.zeros(20, 5, 10), training=True)
    assert torch.equal(y[:, 0], y[:, 4])
    assert len(torch.unique(y)) == 2


def test_seeded_reproducibility_and_config():
    x = torch.randn(4, 4)
    assert torch.equal(
        AlphaDropout(0.2, seed=1)(x, training=True), AlphaDropout(0.2, seed=1)(x, training=True)
    )
    with pytest.raises(ValueError, match="Invalid value received for argument `rate`"):
        AlphaDropout(1.5)
    keras = keras_module()
    config = AlphaDropout(0.2, noise_shape=(None, 1)).get_config()
    assert set(config) == set(keras.layers.AlphaDropout(0.2).get_config())
    assert AlphaDropout.from_config(config).noise_shape == (None, 1)
