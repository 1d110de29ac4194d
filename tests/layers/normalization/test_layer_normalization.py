import numpy as np
import pytest
import torch

from ktorch.layers import Input, LayerNormalization
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _random_weights(layer_weights, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=w.shape).astype("float32") for w in layer_weights]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"axis": [-2, -1]},
        {"center": False},
        {"scale": False, "epsilon": 1e-5},
        {"rms_scaling": True},
    ],
)
def test_parity_with_keras(keras, kwargs):
    shape = (2, 3, 4)
    x = (np.random.default_rng(1).normal(size=shape) * 3 + 1).astype("float32")
    ref = keras.layers.LayerNormalization(**kwargs)
    ref.build(shape)
    ref.set_weights(_random_weights(ref.get_weights()))
    layer = LayerNormalization(**kwargs)
    layer.build(shape)
    assert [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in ref.weights]
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), to_numpy(ref(x)), atol=1e-5)


@pytest.mark.parametrize("axis", [1, [1, 3], [0, 2]])
def test_non_trailing_axes_match_numpy(axis):
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5)).astype("float32")
    layer = LayerNormalization(axis=axis, epsilon=1e-3)
    layer.build(x.shape)
    weights = _random_weights(layer.get_weights(), seed=3)
    layer.set_weights(weights)
    axes = tuple(axis) if isinstance(axis, list) else (axis,)
    shape = [x.shape[d] if d in axes else 1 for d in range(4)]
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * weights[0].reshape(shape) + weights[1].reshape(
        shape
    )
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), expected, atol=1e-5)


def test_weights_symbolic_shape_and_dtype():
    layer = LayerNormalization()
    assert layer(Input((5, 8))).shape == (None, 5, 8)
    assert [w.name for w in layer.weights] == ["gamma", "beta"]
    assert layer.gamma.shape == (8,) and layer.gamma.trainable
    half = LayerNormalization(dtype="mixed_float16")
    assert half(torch.randn(2, 4).half()).dtype == torch.float16


def test_invalid_axis():
    with pytest.raises(TypeError, match="Expected an int or a list/tuple of ints"):
        LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="out of bounds"):
        LayerNormalization(axis=3)(torch.zeros(2, 3))


def test_config_round_trip(keras):
    layer = LayerNormalization(axis=[1, 2], epsilon=1e-5, scale=False)
    config = layer.get_config()
    assert set(config) == set(keras.layers.LayerNormalization().get_config())
    restored = LayerNormalization.from_config(config)
    assert (restored.axis, restored.epsilon, restored.scale) == ([1, 2], 1e-5, False)
