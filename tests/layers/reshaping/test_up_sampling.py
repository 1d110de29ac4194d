"""UpSampling1D/2D/3D: nearest repetition, bilinear 2D, config and Keras parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy

RNG = np.random.default_rng(4)


def _compare(name, kwargs, shape, atol=0.0):
    keras = keras_module()
    x = RNG.standard_normal(shape).astype("float32")
    ref_layer = getattr(keras.layers, name)(**kwargs)
    x_ref = torch.tensor(x, requires_grad=True)
    ref_out = ref_layer(x_ref)
    ref_out.square().sum().backward()
    layer = getattr(layers, name)(**kwargs)
    x_ours = torch.tensor(x, requires_grad=True)
    out = layer(x_ours)
    out.square().sum().backward()
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out), atol=atol, rtol=atol)
    np.testing.assert_allclose(to_numpy(x_ours.grad), to_numpy(x_ref.grad), atol=atol * 10)
    assert tuple(layer.compute_output_shape(shape)) == tuple(ref_out.shape)
    assert tuple(layer(layers.Input(shape[1:])).shape) == (None, *tuple(ref_out.shape)[1:])
    config = layer.get_config()
    assert config == {**ref_layer.get_config(), "dtype": config["dtype"], "name": config["name"]}
    assert getattr(layers, name).from_config(config).get_config() == config


@pytest.mark.parametrize("size", [1, 2, 3])
def test_up_sampling1d_parity(size):
    _compare("UpSampling1D", {"size": size}, (2, 5, 3))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [2, (2, 3)])
def test_up_sampling2d_parity(data_format, interpolation, size):
    shape = (2, 4, 5, 3) if data_format == "channels_last" else (2, 3, 4, 5)
    kwargs = {"size": size, "data_format": data_format, "interpolation": interpolation}
    _compare("UpSampling2D", kwargs, shape, atol=1e-6 if interpolation == "bilinear" else 0.0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("size", [2, (1, 2, 3)])
def test_up_sampling3d_parity(data_format, size):
    shape = (1, 2, 3, 4, 2) if data_format == "channels_last" else (1, 2, 2, 3, 4)
    _compare("UpSampling3D", {"size": size, "data_format": data_format}, shape)


def test_nearest_repeats_each_cell():
    x = torch.arange(4.0).reshape(1, 2, 2, 1)
    out = layers.UpSampling2D((2, 3))(x)
    expected = x.repeat_interleave(2, dim=1).repeat_interleave(3, dim=2)
    torch.testing.assert_close(out, expected)
    assert out.is_contiguous()


def test_defaults_and_errors():
    assert layers.UpSampling1D().size == 2
    assert layers.UpSampling2D().size == (2, 2)
    assert layers.UpSampling3D().size == (2, 2, 2)
    assert layers.UpSampling2D(interpolation="BILINEAR").interpolation == "bilinear"
    with pytest.raises(ValueError, match="interpolation"):
        layers.UpSampling2D(interpolation="cubic")
    with pytest.raises(ValueError, match="positive"):
        layers.UpSampling1D(0)
    with pytest.raises(TypeError, match="integer"):
        layers.UpSampling1D((2,))
    with pytest.raises(ValueError, match="size"):
        layers.UpSampling3D((2, 2))
