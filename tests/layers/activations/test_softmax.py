import numpy as np
import pytest
import torch

from ktorch.layers import Input, Softmax
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize("axis", [-1, 1, (1, 2), [2]])
def test_parity_with_keras(keras, axis):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    expected = to_numpy(keras.layers.Softmax(axis=axis)(x))
    np.testing.assert_allclose(Softmax(axis)(torch.tensor(x)).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("mask_shape", [(2, 3, 4), (3, 4), (4,)])
def test_mask_parity_with_keras(keras, mask_shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    mask = rng.random(mask_shape) > 0.4
    mask[..., 0] = False
    expected = to_numpy(keras.layers.Softmax()(x, mask=mask))
    out = Softmax()(torch.tensor(x), mask=torch.tensor(mask)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert np.all(out[..., 0] == 0.0)


def test_fully_masked_rows_and_float_masks():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = Softmax()(x, mask=torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert out.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_mask_shape_errors():
    with pytest.raises(ValueError, match="must not have more dimensions"):
        Softmax()(torch.zeros(1, 3), mask=torch.ones(1, 1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="broadcastable"):
        Softmax()(torch.zeros(1, 3), mask=torch.ones(2, 3, dtype=torch.bool))


def test_symbolic_and_config(keras):
    assert Softmax()(Input((5,))).shape == (None, 5)
    config = Softmax(axis=[1, 2]).get_config()
    assert set(config) == set(keras.layers.Softmax().get_config())
    assert Softmax.from_config(config).axis == [1, 2]
