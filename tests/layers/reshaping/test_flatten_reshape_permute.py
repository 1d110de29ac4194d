"""Flatten, Reshape, Permute and RepeatVector: shapes, views, config and Keras parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy

RNG = np.random.default_rng(2)


def _compare(name, kwargs, shape):
    keras = keras_module()
    x = RNG.standard_normal(shape).astype("float32")
    ref_layer = getattr(keras.layers, name)(**kwargs)
    expected = to_numpy(ref_layer(torch.tensor(x)))
    layer = getattr(layers, name)(**kwargs)
    out = layer(torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), expected)
    assert tuple(layer.compute_output_shape(shape)) == expected.shape
    symbolic = layer(layers.Input(shape[1:]))
    assert tuple(symbolic.shape) == (None, *expected.shape[1:])
    config = layer.get_config()
    assert config == {**ref_layer.get_config(), "dtype": config["dtype"], "name": config["name"]}
    assert getattr(layers, name).from_config(config).get_config() == config
    return layer, out


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 4), (2, 3, 4, 5), (2, 2, 3, 4, 5)])
def test_flatten_parity(data_format, shape):
    _compare("Flatten", {"data_format": data_format}, shape)


def test_flatten_is_a_view_and_handles_rank_one():
    x = torch.randn(4, 3, 5)
    out = layers.Flatten()(x)
    assert out.data_ptr() == x.data_ptr() and tuple(out.shape) == (4, 15)
    assert tuple(layers.Flatten()(torch.randn(6)).shape) == (6, 1)
    assert layers.Flatten().compute_output_shape((None, None, 3)) == (None, None)


@pytest.mark.parametrize("target", [(3, 4), (-1, 2, 2), (12,), (2, -1)])
def test_reshape_parity(target):
    layer, _ = _compare("Reshape", {"target_shape": target}, (2, 12))
    x = torch.randn(2, 12)
    assert layer(x).data_ptr() == x.data_ptr()


def test_reshape_unknown_sizes_and_errors():
    y = layers.Reshape((-1, 4))(layers.Input((None, 2)))
    assert tuple(y.shape) == (None, None, 4)
    assert tuple(layers.Reshape((-1, 4))(torch.zeros(3, 6, 2)).shape) == (3, 3, 4)
    with pytest.raises(ValueError, match="unchanged"):
        layers.Reshape((5,)).compute_output_shape((None, 12))
    with pytest.raises(ValueError, match="at most one"):
        layers.Reshape((-1, -1))
    with pytest.raises(ValueError, match="non-negative"):
        layers.Reshape((-2, 3))


@pytest.mark.parametrize("dims", [(2, 1), (1, 2), (3, 1, 2), (2, 3, 1)])
def test_permute_parity(dims):
    shape = (2, 3, 4) if len(dims) == 2 else (2, 3, 4, 5)
    _, out = _compare("Permute", {"dims": dims}, shape)
    assert tuple(out.shape) == (2, *(shape[d] for d in dims))


def test_permute_errors():
    with pytest.raises(ValueError, match="dims"):
        layers.Permute((0, 1))
    with pytest.raises(ValueError, match="ndim=3"):
        layers.Permute((2, 1))(layers.Input((3, 4, 5)))


@pytest.mark.parametrize("n", [1, 3])
def test_repeat_vector_parity(n):
    _, out = _compare("RepeatVector", {"n": n}, (2, 5))
    assert tuple(out.shape) == (2, n, 5)


def test_repeat_vector_gradient_and_errors():
    x = torch.randn(2, 4, requires_grad=True)
    layers.RepeatVector(3)(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 3.0))
    with pytest.raises(ValueError, match="positive"):
        layers.RepeatVector(0)
    with pytest.raises(TypeError, match="integer"):
        layers.RepeatVector(2.0)
