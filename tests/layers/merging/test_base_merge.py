"""Element-wise merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum)."""

import numpy as np
import pytest
import torch

from ktorch import layers
from ktorch.layers import Input
from tests.keras_ref import keras_module, to_numpy

NAMES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
FUNCTIONS = {
    "Add": layers.add,
    "Subtract": layers.subtract,
    "Multiply": layers.multiply,
    "Average": layers.average,
    "Maximum": layers.maximum,
    "Minimum": layers.minimum,
}


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype("float32") for s in shapes]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shapes", [[(2, 4, 5), (2, 4, 5)], [(2, 4, 5), (2, 1, 5)], [(2, 5), (2, 4, 5)]]
)
def test_parity_with_keras(keras, name, shapes):
    xs = _inputs(shapes)
    expected = to_numpy(getattr(keras.layers, name)()(xs))
    layer = getattr(layers, name)()
    out = layer([torch.tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    assert layer.weights == []


@pytest.mark.parametrize("name", [n for n in NAMES if n != "Subtract"])
def test_three_inputs_and_functional_form(keras, name):
    xs = _inputs([(3, 4)] * 3, seed=1)
    expected = to_numpy(getattr(keras.layers, name)()(xs))
    out = FUNCTIONS[name]([torch.tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("masked", [(True, False), (True, True)])
def test_masks_parity_with_keras(keras, name, masked):
    rng = np.random.default_rng(2)
    xs = _inputs([(2, 5, 3), (2, 5, 3)], seed=3)
    masks = [rng.random((2, 5)) > 0.4 for _ in xs]
    keras_inputs, our_inputs = [], []
    for x, m, use in zip(xs, masks, masked, strict=True):
        k, t = keras.ops.convert_to_tensor(x), torch.tensor(x)
        if use:
            k._keras_mask = keras.ops.convert_to_tensor(m)
            t._keras_mask = torch.tensor(m)
        keras_inputs.append(k)
        our_inputs.append(t)
    expected = getattr(keras.layers, name)()(keras_inputs)
    out = getattr(layers, name)()(our_inputs)
    np.testing.assert_allclose(out.numpy(), to_numpy(expected), atol=1e-6)
    if all(masked):
        np.testing.assert_array_equal(out._keras_mask.numpy(), masks[0] | masks[1])
    else:
        assert out.__dict__.get("_keras_mask") is None


@pytest.mark.parametrize("name", NAMES)
def test_symbolic_shapes(name):
    a, b = Input((4, 5), batch_size=3), Input((1, 5))
    assert getattr(layers, name)()([a, b]).shape == (3, 4, 5)
    assert getattr(layers, name)()([Input((5,)), Input((4, 5))]).shape == (None, 4, 5)


def test_shape_errors():
    with pytest.raises(ValueError, match="Inputs have incompatible shapes"):
        layers.Add()([Input((4,)), Input((5,))])
    with pytest.raises(ValueError, match="different batch sizes"):
        layers.Add()([Input((4,), batch_size=2), Input((4,), batch_size=3)])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([Input((4,)), Input((4,)), Input((4,))])
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Add()(torch.zeros(2, 3))


def test_compute_mask_checks():
    layer = layers.Add()
    x = [torch.zeros(2, 3), torch.zeros(2, 3)]
    assert layer.compute_mask(x, [None, None]) is None
    assert layer.compute_mask(x, [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])]).tolist() == [
        True,
        False,
    ]
    with pytest.raises(ValueError, match="`mask` should be a list"):
        layer.compute_mask(x, torch.ones(2))
    with pytest.raises(ValueError, match="should have the same length"):
        layer.compute_mask(x, [None])


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(keras, name):
    layer = getattr(layers, name)(name="merge")
    config = layer.get_config()
    assert set(config) == set(getattr(keras.layers, name)().get_config())
    assert type(layer).from_config(config).name == "merge"
