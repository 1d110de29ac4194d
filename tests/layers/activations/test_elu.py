import numpy as np
import torch

from ktorch.layers import ELU
from tests.keras_ref import keras_module, to_numpy


def test_parity_with_keras():
    keras = keras_module()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    for alpha in (1.0, 0.7):
        expected = to_numpy(keras.layers.ELU(alpha=alpha)(x))
        np.testing.assert_allclose(ELU(alpha)(torch.tensor(x)).numpy(), expected, atol=1e-6)


def test_config_round_trip_keeps_alpha():
    keras = keras_module()
    config = ELU(alpha=0.5).get_config()
    assert set(config) == set(keras.layers.ELU(alpha=0.5).get_config())
    restored = ELU.from_config(config)
    assert restored.alpha == 0.5
    assert restored(torch.tensor([-1.0])).item() == np.float32(0.5 * np.expm1(-1.0))
