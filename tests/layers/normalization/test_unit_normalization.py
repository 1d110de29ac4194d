import numpy as np
import pytest
import torch

from ktorch.layers import Input, UnitNormalization
from tests.keras_ref import keras_module, to_numpy


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_parity_with_keras(axis):
    keras = keras_module()
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    x[0, 0] = 0.0
    expected = to_numpy(keras.layers.UnitNormalization(axis=axis)(x))
    out = UnitNormalization(axis=axis)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert np.all(np.isfinite(out))


def test_unit_norm_shape_and_config():
    keras = keras_module()
    y = UnitNormalization()(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(y, torch.tensor([[0.6, 0.8]]))
    assert UnitNormalization()(Input((3,))).shape == (None, 3)
    config = UnitNormalization(axis=[1, 2]).get_config()
    assert set(config) == set(keras.layers.UnitNormalization().get_config())
    assert UnitNormalization.from_config(config).axis == [1, 2]
    with pytest.raises(TypeError, match="expected an int or a list/tuple of ints"):
        UnitNormalization(axis="x")
