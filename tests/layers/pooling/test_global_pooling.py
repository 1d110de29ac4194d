"""GlobalMax/AveragePooling1D/2D/3D: keepdims, data_format, masks, config, Keras parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy

RNG = np.random.default_rng(1)
SPATIAL = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Max", "Average"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_keras_parity_and_shapes(rank, kind, data_format, keepdims):
    keras = keras_module()
    spatial = SPATIAL[rank]
    shape = (2, *spatial, 4) if data_format == "channels_last" else (2, 4, *spatial)
    x = RNG.standard_normal(shape).astype("float32")
    name = f"Global{kind}Pooling{rank}D"
    ref_layer = getattr(keras.layers, name)(data_format=data_format, keepdims=keepdims)
    layer = getattr(layers, name)(data_format=data_format, keepdims=keepdims)
    x_ref = torch.tensor(x, requires_grad=True)
    ref_out = ref_layer(x_ref)
    ref_out.square().sum().backward()
    x_ours = torch.tensor(x, requires_grad=True)
    out = layer(x_ours)
    out.square().sum().backward()
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out), atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(x_ours.grad), to_numpy(x_ref.grad), atol=1e-6)
    assert tuple(layer.compute_output_shape(shape)) == tuple(ref_out.shape)
    symbolic = layer(layers.Input(shape[1:]))
    assert tuple(symbolic.shape) == (None, *tuple(ref_out.shape)[1:])
    config = layer.get_config()
    assert config == {**ref_layer.get_config(), "dtype": config["dtype"], "name": config["name"]}
    assert getattr(layers, name).from_config(config).get_config() == config


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_average_1d_mask_parity(data_format, keepdims):
    keras = keras_module()
    x = RNG.standard_normal((3, 6, 4)).astype("float32")
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    ref = keras.layers.GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims)
    expected = to_numpy(ref(torch.tensor(x), mask=torch.tensor(mask)))
    layer = layers.GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims)
    out = layer(torch.tensor(x), mask=torch.tensor(mask))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    assert layer.compute_mask(torch.tensor(x), torch.tensor(mask)) is None


def test_average_1d_uses_an_attached_mask():
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    x._keras_mask = mask
    out = layers.GlobalAveragePooling1D()(x)
    torch.testing.assert_close(out[0], x[0, :2].mean(0))
    torch.testing.assert_close(out[1], x[1].mean(0))
    assert getattr(out, "_keras_mask", None) is None


def test_channels_last_average_needs_no_permute():
    x = torch.randn(2, 4, 4, 8)
    out = layers.GlobalAveragePooling2D()(x)
    torch.testing.assert_close(out, x.permute(0, 3, 1, 2).mean((2, 3)))


def test_aliases_and_errors():
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D
    assert layers.GlobalMaxPool2D is layers.GlobalMaxPooling2D
    assert layers.GlobalMaxPool3D is layers.GlobalMaxPooling3D
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D
    assert layers.GlobalAvgPool3D is layers.GlobalAveragePooling3D
    with pytest.raises(ValueError, match="ndim=4"):
        layers.GlobalMaxPooling2D()(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="data_format"):
        layers.GlobalAveragePooling2D(data_format="channels_middle")
