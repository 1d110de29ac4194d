import numpy as np
import pytest
import torch

from ktorch.layers import Dot, Input, dot
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "axes, shapes",
    [
        (-1, [(2, 4), (2, 4)]),
        (1, [(2, 4), (2, 4, 3)]),
        (-1, [(2, 3, 4), (2, 4)]),
        (-1, [(2, 3, 4), (2, 5, 4)]),
        ((1, 2), [(2, 3, 4), (2, 5, 3)]),
        ((-2, -1), [(1, 3, 2), (1, 1, 2, 3)]),
    ],
)
@pytest.mark.parametrize("normalize", [False, True])
def test_parity_with_keras(keras, axes, shapes, normalize):
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=s).astype("float32") for s in shapes]
    expected = to_numpy(keras.layers.Dot(axes=axes, normalize=normalize)(xs))
    layer = Dot(axes=axes, normalize=normalize)
    out = layer([torch.tensor(x) for x in xs])
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    symbolic = Dot(axes=axes)([Input(batch_shape=s) for s in shapes])
    assert symbolic.shape == expected.shape


def test_cosine_proximity_and_functional_form():
    a = torch.tensor([[3.0, 4.0]])
    b = torch.tensor([[6.0, 8.0]])
    assert dot([a, b], axes=1).tolist() == [[50.0]]
    assert torch.allclose(dot([a, b], axes=1, normalize=True), torch.tensor([[1.0]]))


def test_invalid_arguments_and_shapes():
    with pytest.raises(TypeError, match="should be a list or an int"):
        Dot(axes="x")
    with pytest.raises(ValueError, match="should contain two elements"):
        Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        Dot(axes=-1)([Input((3,)), Input((4,))])
    assert Dot(axes=1).compute_mask([torch.ones(2, 3)] * 2, [torch.ones(2)] * 2) is None


def test_config_round_trip(keras):
    config = Dot(axes=(1, 2), normalize=True).get_config()
    assert set(config) == set(keras.layers.Dot(axes=1).get_config())
    restored = Dot.from_config(config)
    assert tuple(restored.axes) == (1, 2) and restored.normalize
