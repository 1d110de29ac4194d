import math

import pytest
import torch

from ktorch.layers import GaussianDropout
from tests.keras_ref import keras_module


def test_noise_statistics_and_inference_identity():
    x = torch.ones(100, 100)
    y = GaussianDropout(0.3)(x, training=True)
    assert abs(y.mean().item() - 1.0) < 0.02
    assert abs(y.std().item() - math.sqrt(0.3 / 0.7)) < 0.02
    assert GaussianDropout(0.3)(x) is x


def test_seeded_reproducibility_and_config():
    x = torch.ones(4, 4)
    assert torch.equal(
        GaussianDropout(0.2, seed=5)(x, training=True),
        GaussianDropout(0.2, seed=5)(x, training=True),
    )
    with pytest.raises(ValueError, match="Invalid value received for argument `rate`"):
        GaussianDropout(-0.1)
    keras = keras_module()
    config = GaussianDropout(0.2).get_config()
    assert set(config) == set(keras.layers.GaussianDropout(0.2).get_config())
    assert GaussianDropout.from_config(config).rate == 0.2
