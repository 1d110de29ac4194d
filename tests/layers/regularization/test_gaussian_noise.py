import pytest
import torch

from ktorch.layers import GaussianNoise
from tests.keras_ref import keras_module


def test_noise_statistics_and_inference_identity():
    x = torch.ones(100, 100)
    y = GaussianNoise(0.3)(x, training=True)
    noise = y - x
    assert abs(noise.mean().item()) < 0.02
    assert abs(noise.std().item() - 0.3) < 0.02
    assert GaussianNoise(0.3)(x) is x


def test_seeded_and_global_reproducibility():
    x = torch.zeros(5, 5)
    assert torch.equal(
        GaussianNoise(0.1, seed=1)(x, training=True), GaussianNoise(0.1, seed=1)(x, training=True)
    )
    layer = GaussianNoise(0.1)
    torch.manual_seed(0)
    a = layer(x, training=True)
    torch.manual_seed(0)
    assert torch.equal(a, layer(x, training=True))


def test_invalid_stddev_and_config():
    with pytest.raises(ValueError, match="Invalid value received for argument `stddev`"):
        GaussianNoise(1.5)
    keras = keras_module()
    config = GaussianNoise(0.2, seed=3).get_config()
    assert set(config) == set(keras.layers.GaussianNoise(0.2).get_config())
    assert GaussianNoise.from_config(config).stddev == 0.2
