import numpy as np
import pytest
import torch

from ktorch.layers import Concatenate, Input, concatenate
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "axis, shapes",
    [(-1, [(2, 3, 4), (2, 3, 5)]), (1, [(2, 3, 4), (2, 1, 4)]), (0, [(1, 3), (2, 3)])],
)
def test_parity_and_shapes(keras, axis, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=s).astype("float32") for s in shapes]
    expected = to_numpy(keras.layers.Concatenate(axis=axis)(xs))
    out = Concatenate(axis=axis)([torch.tensor(x) for x in xs])
    np.testing.assert_array_equal(out.numpy(), expected)
    assert concatenate([torch.tensor(x) for x in xs], axis=axis).shape == expected.shape


def test_symbolic_shapes():
    assert concatenate([Input((3, 4)), Input((3, 5))]).shape == (None, 3, 9)
    assert concatenate([Input((None, 4)), Input((2, 4))], axis=1).shape == (None, None, 4)


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        Concatenate(axis=-1)([torch.ones(1, 2, 1, 1, 5), torch.ones(1, 1, 1, 1, 4)])
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        concatenate([Input((3, 4)), Input((2, 4))], axis=-1)


@pytest.mark.parametrize("axis", [1, 2])
def test_masks_parity_with_keras(keras, axis):
    x1 = np.array([[[0, 0], [1, 2], [0, 0], [3, 4]]], dtype="float32")
    x2 = np.array([[[0, 0], [0, 0], [1, 2], [3, 4]]], dtype="float32")
    masking = keras.layers.Masking()
    expected = keras.layers.Concatenate(axis=axis)([masking(x1), keras.ops.convert_to_tensor(x2)])
    t1 = torch.tensor(x1)
    t1._keras_mask = torch.tensor(x1.any(-1))
    out = Concatenate(axis=axis)([t1, torch.tensor(x2)])
    np.testing.assert_array_equal(out.numpy(), to_numpy(expected))
    np.testing.assert_array_equal(out._keras_mask.numpy(), to_numpy(expected._keras_mask))


def test_config_round_trip(keras):
    config = Concatenate(axis=1).get_config()
    assert set(config) == set(keras.layers.Concatenate().get_config())
    assert Concatenate.from_config(config).axis == 1
